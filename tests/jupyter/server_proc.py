"""A real ``jupyter server`` child process with the Studio extension, for the browser test
and bench/ws_load.py.

The extension is enabled only through the repo's ``jupyter-config`` folder (put on
JUPYTER_CONFIG_PATH), so starting it also proves the auto-enable JSON works.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterServerProcess:
    def __init__(self, workdir: Path, data_dir: Path, max_tokens: int = 24, extra: dict[str, Any] | None = None):
        self.workdir = Path(workdir)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}/"
        studio = {"data_dir": str(data_dir), "pipeline_overrides": {"max_tokens": max_tokens}}
        studio.update(extra or {})
        self.config = {
            "ServerApp": {"ip": "127.0.0.1", "port": self.port, "port_retries": 0, "open_browser": False,
                          "root_dir": str(self.workdir), "allow_root": True},
            "IdentityProvider": {"token": self.token},
            "StudioExtension": studio,
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> "JupyterServerProcess":
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "server_config.json"
        cfg.write_text(json.dumps(self.config))
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
                   JUPYTER_CONFIG_PATH=str(REPO / "jupyter-config"),
                   JUPYTER_CONFIG_DIR=str(self.workdir / "config"), JUPYTER_RUNTIME_DIR=str(self.workdir / "runtime"),
                   PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        self.log = open(self.workdir / "server.log", "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyter_server", f"--config={cfg}"],
                                     cwd=self.workdir, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        return self

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
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
