"""Fixtures for the inference tests: one real model shared by the module, and a real
OpenAI-compatible server (llama-cpp-python's) started as a child process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from studio_nb.services.inference import LlamaCppClient

N_THREADS = 2


@pytest.fixture(scope="session")
def llama_client():
    client = LlamaCppClient(n_threads=N_THREADS, n_ctx=2048)
    client.warm_up()
    yield client
    client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """Base URL of ``python -m llama_cpp.server`` serving the bundled model on 127.0.0.1."""
    import httpx

    from studio_nb.services.models import default_chat_model_path

    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(default_chat_model_path()),
        "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", str(N_THREADS), "--n_ctx", "2048", "--verbose", "False",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server not ready after 90 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
