"""Fixtures for the notebook front end: one real Studio pipeline, a real IPython shell.

The pipeline is the run's one real pipeline (tests/conftest.py ``studio``: llama.cpp with
the bundled SmolLM2, MiniLM embeddings, SQLite memory, hnswlib), MAX_TOKENS new tokens
per answer, a fresh data dir per test run.
The shell is IPython's own InteractiveShell with the extension loaded, and its display
publisher records every display and in-place update so tests can see streaming.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@pytest.fixture(scope="session")
def studio_pipe(studio: Any) -> Any:
    """The run's one real Studio pipeline (tests/conftest.py ``studio``)."""
    return studio


@dataclass
class Published:
    data: dict[str, Any]
    display_id: str | None
    update: bool

    def text(self) -> str:
        return str(self.data.get("text/plain", ""))


@pytest.fixture(scope="session")
def shell(studio_pipe: Any) -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    from studio_nb.notebook import use_pipeline

    ip = InteractiveShell.instance()
    result = ip.run_line_magic("load_ext", "studio_nb.notebook")
    assert result is None
    use_pipeline(studio_pipe)
    ip.run_line_magic("config", "StudioMagics.updates_per_second = 1000.0")  # see every token
    yield ip
    use_pipeline(None)


@pytest.fixture
def published(shell: Any) -> Any:
    """Every display (and in-place update) the shell publishes during the test, in order."""
    from IPython.core.displaypub import DisplayPublisher

    calls: list[Published] = []

    class Recorder(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kw):
            calls.append(Published(dict(data), (transient or {}).get("display_id"), update))

    old = shell.display_pub
    shell.display_pub = Recorder(shell=shell)
    yield calls
    shell.display_pub = old


@pytest.fixture
def run(shell: Any) -> Any:
    """Run a cell as a user would (input transformers included); returns the ExecutionResult."""

    def run_cell(source: str) -> Any:
        return shell.run_cell(source, store_history=True)

    return run_cell
