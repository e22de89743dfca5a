"""One real Studio pipeline for the whole module set: real llama.cpp model, real embeddings.

Loading models and indexing costs tens of seconds on 2 cores, so the pipeline is
session-scoped; tests use their own session ids so they do not see each other's memory.
"""

from __future__ import annotations

import shutil

import pytest

#: sage_docs pages about environments (enough for the LocalEnvironment question, fast to embed)
ENV_DOCS = [
    "guides/packages/sage-kernel/api/environments.md",
    "guides/packages/sage-kernel/core/execution_environments.md",
    "guides/packages/sage-kernel/concepts.md",
]


@pytest.fixture(scope="session")
def studio_dir(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("studio")
    docs = root / "sage_docs_subset"
    for rel in ENV_DOCS:
        target = docs / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "sage_docs" / rel, target)
    return root


@pytest.fixture(scope="session")
def studio(studio_dir):
    from studio_nb.studio import create_studio_pipeline

    pipe = create_studio_pipeline(data_dir=str(studio_dir / "data"), max_tokens=32, workspace=str(studio_dir))
    pipe.warm_up()
    pipe.ingest(studio_dir / "sage_docs_subset", "sage_docs", progress=False)
    yield pipe
    pipe.close()
