"""Notebook 05 in a real JupyterLab, in headless Chromium: the panel streams in the browser.

Runs every cell of ``notebooks/05_chat_panel.ipynb`` (real pipeline, real model), then
types a question into the rendered panel, clicks Send, and records each redraw of the
answer in the page. A screenshot goes to ``test-artifacts/notebook_panel.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.notebook.lab import CHROMIUM, REPO_ROOT, cell_errors, chromium_page, jupyter_lab, run_all_cells

pytestmark = pytest.mark.slow

NOTEBOOK = REPO_ROOT / "notebooks" / "05_chat_panel.ipynb"
SCREENSHOT = REPO_ROOT / "test-artifacts" / "notebook_panel.png"
QUESTION = "How do I switch a branch off?"

RECORD_ANSWERS = """() => {
    window.__studioAnswers = [];
    const panel = document.querySelector('.studio-chat-panel');
    const text = (sel) => { const el = panel.querySelector(sel); return el ? el.textContent : null; };
    new MutationObserver(() => {
        if (panel.querySelector('.studio-answer')) window.__studioAnswers.push(
            {evidence: text('.studio-evidence'), synthesis: text('.studio-synthesis')});
    }).observe(panel, {subtree: true, childList: true, characterData: true});
}"""


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def test_panel_streams_in_jupyterlab(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with jupyter_lab(tmp_path, [NOTEBOOK]) as lab, chromium_page() as page:
        page.goto(lab.notebook_url(NOTEBOOK.name))
        run_all_cells(page, timeout_s=900)
        assert cell_errors(page) == []

        panels = page.locator(".studio-chat-panel")
        assert panels.count() == 1
        panel = panels.first
        panel.scroll_into_view_if_needed()
        # the notebook's own cells drove the panel: Clear was the last action
        assert panel.locator(".studio-status").get_attribute("data-state") == "ready"

        page.evaluate(RECORD_ANSWERS)
        panel.locator("textarea").fill(QUESTION)
        panel.locator("button:has-text('Send')").click()
        page.wait_for_selector(".studio-chat-panel .studio-status[data-state='thinking']", timeout=30_000)
        page.wait_for_selector(".studio-chat-panel .studio-status[data-state='done']", timeout=600_000)

        frames = page.evaluate("window.__studioAnswers")
        final = panel.locator(".studio-answer")
        assert final.text_content().strip() and not final.text_content().endswith("▌")
        # the synthesis streams: it arrives in pieces, each piece extends the last (a retry starts over)
        attempts: list[list[str]] = [[]]
        for f in frames:
            shown = (f["synthesis"] or "").removesuffix("▌").rstrip()
            if (f["synthesis"] or "").endswith("▌"):
                if not shown and attempts[-1]:
                    attempts.append([])
                elif shown and (not attempts[-1] or attempts[-1][-1] != shown):
                    attempts[-1].append(shown)
        partial = attempts[-1]
        assert len(partial) >= 2, f"the answer should arrive in pieces, saw {frames!r}"
        assert all(b.startswith(a) for a, b in zip(partial, partial[1:])), partial
        # the evidence came first and stays as it was; the checked synthesis only keeps what streamed
        evidence = {f["evidence"] for f in frames if f["evidence"] is not None}
        assert evidence and final.locator(".studio-evidence").count() == 1
        assert evidence == {final.locator(".studio-evidence").text_content()}
        if final.locator(".studio-synthesis").count():
            assert words(final.locator(".studio-synthesis").text_content()) <= words(partial[-1])
        assert QUESTION in panel.text_content()
        assert "llm_inference" in panel.locator(".studio-trace").text_content()
        assert panel.locator("button:has-text('Send')").is_enabled()

        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
