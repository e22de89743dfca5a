"""A real ``jupyter server`` child process with the Studio extension, for the browser test,
the reliability tests (fuzzing, many users, kill -9) and bench/ws_load.py.

The extension is enabled only through the repo's ``jupyter-config`` folder (put on
JUPYTER_CONFIG_PATH), so starting it also proves the auto-enable JSON works. The server
binds port 0 itself (tests/jupyter/serve.py) and reports the port it got: nothing picks
a free port and releases it for someone else to take.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


class JupyterServerProcess:
    """``identity_provider``: a class path such as ``tests.jupyter.identity.ManyUsers``
    (default: Jupyter's token login with a fresh token)."""

    def __init__(self, workdir: Path, data_dir: Path, max_tokens: int = 24, extra: dict[str, Any] | None = None,
                 identity_provider: str | None = None, module: str = "tests.jupyter.serve"):
        self.workdir = Path(workdir)
        self.port: int | None = None
        self.url: str | None = None
        self.token = secrets.token_hex(16)
        studio = {"data_dir": str(data_dir), "pipeline_overrides": {"max_tokens": max_tokens}}
        studio.update(extra or {})
        server = {"ip": "127.0.0.1", "open_browser": False, "root_dir": str(self.workdir / "root"),
                  "allow_root": True}
        if identity_provider:
            server["identity_provider_class"] = identity_provider
        self.config = {"ServerApp": server, "IdentityProvider": {"token": self.token}, "StudioExtension": studio}
        self.proc: subprocess.Popen | None = None
        self.module = module  # tests.notebook.serve_lab: JupyterLab itself

    def start(self) -> "JupyterServerProcess":
        """Start the server; returns once it listens (models still warm up in the background)."""
        (self.workdir / "root").mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "server_config.json"
        cfg.write_text(json.dumps(self.config))
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                   JUPYTER_CONFIG_PATH=str(REPO / "jupyter-config"),
                   JUPYTER_CONFIG_DIR=str(self.workdir / "config"), JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        self.log = open(self.workdir / "server.log", "a")
        self.proc = subprocess.Popen([sys.executable, "-m", self.module, f"--config={cfg}"],
                                     cwd=self.workdir, env=env, stdout=subprocess.PIPE, stderr=self.log, text=True)
        for line in self.proc.stdout:  # blocks until the server listens (or exits)
            if line.startswith("STUDIO_TEST_PORT "):
                self.port = int(line.split()[1])
                break
        else:
            self.proc.wait()
            raise RuntimeError(f"jupyter server exited with {self.proc.returncode} before listening; "
                               f"see {self.log.name}")
        self.url = f"http://127.0.0.1:{self.port}/"
        threading.Thread(target=self._drain, daemon=True).start()  # a full stdout pipe must never block it
        return self

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.log.write(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_bytes(self) -> int:
        """The server process's resident memory now (VmRSS)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    def kill9(self) -> None:
        """SIGKILL: no handler, no flush, no goodbye; the process is gone when this returns."""
        self.proc.kill()
        self.proc.wait()
        self.log.close()

    def get(self, path: str) -> Any:
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def wait_ready(self, timeout: float = 900) -> dict[str, Any]:
        """Wait until the server answers and the Studio pipeline has warmed up."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited with {self.proc.returncode}; see {self.log.name}")
            try:
                health = self.get("studio/api/health")
                status = health["runtime"]["status"]
                if status == "ready":
                    return health
                if status == "failed":
                    raise RuntimeError(f"Studio warm-up failed: {health['runtime']}")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(1)
        raise TimeoutError(f"the Studio server was not ready after {timeout} s; see {self.log.name}")

    def stop(self) -> None:
        if self.log.closed:
            return
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
