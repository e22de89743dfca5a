"""Shared test settings: offline models, the shared corpus, the anyio backend."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# a model process whose front ends went away without closing (a killed Jupyter server, Ray
# workers) ends a minute after its last answer instead of ten
os.environ.setdefault("STUDIO_NB_MODEL_IDLE_S", "60")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO_ROOT / ".." / "shared" / "data").resolve()
#: new tokens per answer in tests that run the real model: small answers keep it fast on CPU
MAX_TOKENS = 24
# the embedding model's ONNX export is made once per checkout (git-ignored), not once per
# test data dir: every pipeline under test, and the servers and workers they start, find it here
os.environ.setdefault("STUDIO_NB_EMBEDDING_CACHE", str(REPO_ROOT / ".studio_nb" / "cache" / "embeddings"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def real_embedder():
    """The real embedding model (all-MiniLM-L6-v2), loaded once for the whole run."""
    from studio_nb.services.embeddings import Embedder

    emb = Embedder()
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared corpus is missing: expected {SHARED_DATA} (clone the repo next to shared/)")
    return SHARED_DATA


@pytest.fixture
def scripted_studio(tmp_path: Path):
    """Make the real Studio pipeline (retrieval, evidence, grounding, memory) around a
    scripted model: ``scripted_studio("reply", answer_mode="generative")``. For tests of
    logic that is not about generation; each pipeline is closed after the test."""
    from studio_nb.studio import create_studio_pipeline

    made = []

    def make(*replies: str, **config):
        config.setdefault("data_dir", str(tmp_path / "data"))
        made.append(create_studio_pipeline(llm={"backend": "scripted", "replies": list(replies) or ["ok"]}, **config))
        return made[-1]

    yield make
    for pipe in made:
        pipe.close()


#: sage_docs pages about environments (enough for the LocalEnvironment question, fast to embed)
ENV_DOCS = [
    "guides/packages/sage-kernel/api/environments.md",
    "guides/packages/sage-kernel/core/execution_environments.md",
    "guides/packages/sage-kernel/concepts.md",
]


@pytest.fixture(scope="session")
def studio_dir(tmp_path_factory, shared_data: Path) -> Path:
    """The real pipeline's folder: its data dir (``data``), its workspace, and a subset of
    the SAGE docs (``sage_docs_subset``) it ingests."""
    import shutil

    root = tmp_path_factory.mktemp("studio")
    docs = root / "sage_docs_subset"
    for rel in ENV_DOCS:
        target = docs / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / "sage_docs" / rel, target)
    return root


@pytest.fixture(scope="session")
def studio(studio_dir: Path):
    """The one real Studio pipeline of a test run (llama.cpp with the bundled model, the real
    embeddings, SQLite memory), warmed up once and shared by every test that needs it: each
    test uses its own session ids, so tests do not see each other's memory. Answers are
    MAX_TOKENS long; ``sage_docs`` holds ENV_DOCS."""
    from studio_nb.studio import create_studio_pipeline

    pipe = create_studio_pipeline(data_dir=str(studio_dir / "data"), max_tokens=MAX_TOKENS, workspace=str(studio_dir))
    pipe.warm_up()
    pipe.ingest(studio_dir / "sage_docs_subset", "sage_docs", progress=False)
    yield pipe
    pipe.close()


#: fixtures that load a real model (llama.cpp, the embedding model) or a pipeline that does
MODEL_FIXTURES = frozenset({
    "real_embedder", "embedder", "classifiers", "chat_llm", "llama_client", "llama_server", "guard",
    "studio", "studio_pipe", "shell", "run", "kb", "knowledge", "studio_ws", "jp_serverapp", "scripted_studio",
})


def pytest_collection_modifyitems(config, items):
    """A test that uses a model-loading fixture is ``slow``, whatever its module says, so
    ``make test-fast`` (``-m "not slow"``) never loads a model."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
