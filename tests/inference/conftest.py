"""Fixtures for the inference tests: one real model shared by the module, and a real
OpenAI-compatible server (llama-cpp-python's) started as a child process."""

from __future__ import annotations

import os
import socket
import sys

import pytest

from studio_nb.services.inference import LlamaCppClient
from studio_nb.services.inference.llama_local import default_threads
from tests.procs import Child

N_THREADS = default_threads()  # what a user's client gets; the server child uses the same

#: the prompts the client tests share: a short question, and one that streams ~256 tokens
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
LONG = [{"role": "user", "content": "Count from 1 to 300, separated by commas."}]


@pytest.fixture(scope="session")
def llama_client():
    client = LlamaCppClient(n_threads=N_THREADS, n_ctx=2048)
    client.warm_up()
    yield client
    client.close()


#: uvicorn serving llama-cpp-python's own OpenAI-compatible app on a socket handed down by the test
SERVE = (
    "import sys, uvicorn\n"
    "from llama_cpp.server.app import create_app\n"
    "from llama_cpp.server.settings import ModelSettings, ServerSettings\n"
    "fd, model, threads = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])\n"
    "app = create_app(server_settings=ServerSettings(), model_settings=[ModelSettings(\n"
    "    model=model, n_threads=threads, n_ctx=2048, verbose=False)])\n"
    "uvicorn.run(app, fd=fd, log_level='warning')\n"
)


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """Base URL of ``python -m llama_cpp.server`` serving the bundled model on 127.0.0.1."""
    import httpx

    from studio_nb.services.models import default_chat_model_path

    # the listening socket is bound here, once, and inherited: no port is picked and released
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    log = tmp_path_factory.mktemp("server") / "server.log"
    cmd = [sys.executable, "-c", SERVE, str(listener.fileno()), str(default_chat_model_path()), str(N_THREADS)]
    server = Child(cmd, log=log, name="llama_cpp.server", env={**os.environ, "HF_HUB_OFFLINE": "1"},
                   pass_fds=(listener.fileno(),)).start()
    listener.close()  # the server holds its own copy
    url = f"http://127.0.0.1:{port}"

    def serves() -> bool:
        try:
            return httpx.get(url + "/v1/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    with server:
        server.wait_until(serves, 90, "serve /v1/models", every=0.3)
        yield url
