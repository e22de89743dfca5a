"""A real Jupyter server with jupyterlab-chat and the Studio chat member, two users.

The server is a child process (tests/jupyter/server_proc.py) with the test identity
provider (alice-token -> alice, bob-token -> bob). Each user's workspace is a folder of
the Jupyter root named after them (``workspace = <root>/{user}``); a shared ``docs``
folder holds a copy of the SAGE docs about environments. The model is the scripted
backend: these tests are about the chat, not the model's words.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_DATA
from tests.jupyter.server_proc import JupyterServerProcess

SYNTHESIS = "LocalEnvironment runs the pipeline in this process; RemoteEnvironment submits it to a cluster."
ENV_DOCS = "guides/packages/sage-kernel/api/environments.md"


def write_root(root: Path) -> None:
    (root / "alice").mkdir(parents=True, exist_ok=True)
    (root / "bob").mkdir(exist_ok=True)
    (root / "alice" / "secret").mkdir(exist_ok=True)
    (root / "alice" / "secret" / "heron.md").write_text(
        "# Heron plan\n\nThe heron plan ships the quarterly llama report on Fridays.\n", encoding="utf-8")
    (root / "bob" / "secret").mkdir(exist_ok=True)
    (root / "bob" / "secret" / "otter.md").write_text(
        "# Otter plan\n\nThe otter plan ships the quarterly llama report on Mondays.\n", encoding="utf-8")
    docs = root / "alice" / "docs"
    docs.mkdir(exist_ok=True)
    shutil.copy(SHARED_DATA / "sage_docs" / ENV_DOCS, docs / "environments.md")
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "outputs": [], "execution_count": None,
              "source": src} for i, src in enumerate(["import math", "x = 2", "total = sum(range(10))  # C3"], 1)]
    (root / "alice" / "nb.ipynb").write_text(json.dumps(
        {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    work = tmp_path_factory.mktemp("lab-chat-server")
    root = work / "root"
    write_root(root)
    extra = {"workspace": str(root / "{user}"),
             "pipeline_overrides": {"max_tokens": 24, "bundled_docs": False,
                                    "llm": {"backend": "scripted", "replies": [SYNTHESIS]}}}
    srv = JupyterServerProcess(work, work / "data", extra=extra, identity_provider="tests.jupyter.identity.TwoUsers")
    srv.token = "alice-token"
    srv.start()
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()
