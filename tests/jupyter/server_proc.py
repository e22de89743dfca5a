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
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.procs import Child

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
        self.child: Child | None = None
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
        self.child = Child([sys.executable, "-m", self.module, f"--config={cfg}"],
                           log=self.workdir / "server.log", name="jupyter server", env=env, cwd=self.workdir,
                           announce="STUDIO_TEST_PORT ").start()
        self.port = int(self.child.announced)
        self.url = f"http://127.0.0.1:{self.port}/"
        return self

    @property
    def proc(self) -> subprocess.Popen:
        return self.child.proc

    @property
    def pid(self) -> int:
        return self.child.proc.pid

    def rss_bytes(self) -> int:
        """The server process's resident memory now (VmRSS)."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS line")

    def kill9(self) -> None:
        """SIGKILL: no handler, no flush, no goodbye; the process is gone when this returns."""
        self.child.kill9()

    def get(self, path: str) -> Any:
        req = urllib.request.Request(self.url + path, headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())

    def wait_ready(self, timeout: float = 900) -> dict[str, Any]:
        """Wait until the server answers and the Studio pipeline has warmed up."""

        def ready() -> dict[str, Any] | None:
            try:
                health = self.get("studio/api/health")
            except urllib.error.URLError:
                return None
            if health["runtime"]["status"] == "failed":
                raise RuntimeError(f"Studio warm-up failed: {health['runtime']}")
            return health if health["runtime"]["status"] == "ready" else None

        return self.child.wait_until(ready, timeout, "the Studio pipeline is ready", every=1)

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(30)
