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
PIPELINE_PY = '''"""Example pipelines."""

import math


def square(x):
    return x * x


def build_zebra_pipeline(env):
    """The zebra pipeline doubles every striped packet before it is sent."""
    return env.from_batch(["stripe-a", "stripe-b"]).map(double_stripes).sink(print)


def double_stripes(packet):
    return packet + packet
'''
#: the line of PIPELINE_PY that defines build_zebra_pipeline
ZEBRA_LINE = 10


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
    (docs / "zebra_pipeline.py").write_text(PIPELINE_PY, encoding="utf-8")
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "outputs": [], "execution_count": None,
              "source": src} for i, src in enumerate(["import math", "x = 2", "total = sum(range(10))  # C3"], 1)]
    (root / "alice" / "nb.ipynb").write_text(json.dumps(
        {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}), encoding="utf-8")


def chat_server_process(work: Path, pipeline_overrides: dict[str, Any], *, lab: bool = False) -> JupyterServerProcess:
    """A server (JupyterLab itself when ``lab``) over a fresh ``write_root`` tree, the two test
    users, each user's workspace their folder; started and warmed up (stop it when done)."""
    write_root(work / "root")
    extra = {"workspace": str(work / "root" / "{user}"), "pipeline_overrides": pipeline_overrides}
    srv = JupyterServerProcess(work, work / "data", extra=extra, identity_provider="tests.jupyter.identity.TwoUsers",
                               module="tests.notebook.serve_lab" if lab else "tests.jupyter.serve")
    if lab:
        settings = work / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)  # no "get Jupyter news?" toast over the screenshots
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        srv.config["LabApp"] = {"news_url": "", "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                                "user_settings_dir": str(work / "settings")}
    srv.token = "alice-token"
    srv.start()
    try:
        srv.wait_ready()
    except BaseException:
        srv.stop()
        raise
    return srv


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    srv = chat_server_process(tmp_path_factory.mktemp("lab-chat-server"),
                              {"max_tokens": 24, "bundled_docs": False,
                               "llm": {"backend": "scripted", "replies": [SYNTHESIS]}})
    try:
        yield srv
    finally:
        srv.stop()
