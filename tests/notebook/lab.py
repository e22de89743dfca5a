"""A real JupyterLab for browser tests: a server subprocess on 127.0.0.1 with a token,
and headless Chromium (the system's, driven by Playwright) running a notebook in it.

The notebook is copied into a temporary root first: JupyterLab autosaves, and the
repository's reference outputs must not change because a test ran.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.procs import Child

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}"


@contextlib.contextmanager
def jupyter_lab(tmp: Path, notebooks: list[Path], startup_s: float = 120.0) -> Iterator[Lab]:
    """Serve copies of ``notebooks`` from ``tmp/root`` with an isolated Jupyter config."""
    root = tmp / "root"
    root.mkdir(parents=True, exist_ok=True)
    for nb in notebooks:
        shutil.copy(nb, root / nb.name)
    settings = tmp / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)  # no "get Jupyter news?" toast over the screenshot
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    token = secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    )
    log = tmp / "jupyterlab.log"
    cmd = [
        sys.executable,
        "-m",
        "tests.notebook.serve_lab",  # JupyterLab binding port 0 itself: no port race
        "--no-browser",
        "--ip=127.0.0.1",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.port_retries=0",
        "--LabApp.news_url=",
        f"--LabApp.user_settings_dir={tmp / 'settings'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers often run as root
        cmd.append("--allow-root")
    log.unlink(missing_ok=True)
    lab = Child(cmd, log=log, name="jupyter lab", env=env, cwd=root, announce="STUDIO_TEST_PORT ")
    with lab.start():
        url = f"http://127.0.0.1:{lab.announced}"

        def answers() -> bool:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as resp:
                return resp.status == 200

        lab.wait_until(answers, startup_s, "answer /api/status")
        yield Lab(url, token, root, log)


@contextlib.contextmanager
def chromium_page(width: int = 1280, height: int = 1000) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def run_all_cells(page: Any, timeout_s: float = 600.0) -> None:
    """Run every cell from the Run menu and wait until each code cell has its number."""
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
    page.wait_for_function(  # the kernel is up when the status bar says Idle
        "() => /Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent || '')",
        timeout=120_000,
    )
    page.click(".lm-MenuBar-itemLabel:text-is('Run')")
    page.click("li.lm-Menu-item[data-command='runmenu:run-all']")
    page.wait_for_function(
        """() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
            return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
        }""",
        timeout=timeout_s * 1000,
        polling=500,
    )


def cell_errors(page: Any) -> list[str]:
    """The text of every error output in the notebook (empty when all cells succeeded)."""
    return page.eval_on_selector_all(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
        "els => els.map(e => e.textContent).filter(t => /Error|Traceback/.test(t))",
    )
