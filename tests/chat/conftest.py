"""One real Studio pipeline (real embedding model and knowledge base) whose model is the
scripted backend: these tests are about commands, context and rendering, not the words."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPLY = "A pipeline runs operators. ```python\nprint('hi')\n```"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("workspace")
    notes = ws / "notes"
    notes.mkdir()
    (notes / "zebra.md").write_text(
        "# Zebra protocol\n\nThe zebra protocol sends every packet twice over striped channels.\n"
        "It was designed by the Okapi team in 2021.\n", encoding="utf-8")
    (notes / "llama.md").write_text("# Llamas\n\nLlamas carry loads in the Andes.\n", encoding="utf-8")
    return ws


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory, workspace: Path) -> Any:
    from studio_nb.studio import create_studio_pipeline

    data = tmp_path_factory.mktemp("studio-data")
    pipe = create_studio_pipeline(data_dir=str(data), workspace=str(workspace), bundled_docs=False,
                                  llm={"backend": "scripted", "replies": [REPLY]})
    pipe.warm_up()
    yield pipe
    pipe.close()
