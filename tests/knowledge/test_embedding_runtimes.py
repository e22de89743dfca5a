"""The embedding model served by onnxruntime from a local export: the same vectors as
sentence-transformers (fp32) or close to them (int8), no torch in the serving process,
an export cached by the model files' identity, and a clear error when it cannot be made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from studio_nb.errors import ConfigError
from studio_nb.services.embeddings import Embedder, embedding_cache_dir
from studio_nb.services.models import default_embedding_model_path
from studio_nb.services.onnx_export import cache_key, ensure_exported

pytestmark = pytest.mark.slow

TEXTS = [
    "hi",
    "What is the difference between LocalEnvironment and RemoteEnvironment?",
    "SAGE 的 LocalEnvironment 和 RemoteEnvironment 有什么区别？",
    "def build_pipeline(env):\n    return env.from_source(Source).map(Embed).sink(Print)\n" * 6,
    "The reranker scores each retrieved passage against the query and keeps the best ones. " * 12,
]


@pytest.fixture(scope="module")
def torch_vectors():
    emb = Embedder(runtime="torch")
    vecs = emb.encode(TEXTS)
    emb.close()
    return vecs


def test_onnx_fp32_gives_sentence_transformers_vectors(torch_vectors) -> None:
    emb = Embedder(runtime="onnx")
    vecs = emb.encode(TEXTS)
    assert vecs.shape == torch_vectors.shape == (len(TEXTS), emb.dim) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
    assert (vecs * torch_vectors).sum(axis=1).min() > 0.9999
    # padding does not leak: a text embedded alone or beside longer ones gets the same vector
    assert float(emb.encode([TEXTS[1]])[0] @ vecs[1]) > 0.9999


def test_int8_stays_close_to_the_float_model(torch_vectors, real_embedder) -> None:
    assert real_embedder.runtime == "onnx-int8"  # the default
    cos = (real_embedder.encode(TEXTS) * torch_vectors).sum(axis=1)
    assert cos.min() > 0.95 and cos.mean() > 0.97


def test_the_serving_process_never_imports_torch() -> None:
    code = ("import sys; from studio_nb.services.embeddings import Embedder; e = Embedder(); "
            "e.encode(['hello', 'world', 'a', 'b', 'c']); "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_export_is_keyed_by_the_model_files(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    first = cache_key(model, "int8")
    assert cache_key(model, "int8") == first != cache_key(model, "fp32")
    os.utime(model / "config.json", ns=(1, 1))  # a new package version: other files or times
    assert cache_key(model, "int8") != first
    # the real model's export is found in the cache (made by the fixtures above), not made again
    src = default_embedding_model_path()
    made = ensure_exported(src, embedding_cache_dir(), "int8", log=lambda msg: pytest.fail(f"exported again: {msg}"))
    assert (made / "model.onnx").is_file() and (made / "tokenizer.json").is_file()


def test_a_folder_that_cannot_be_exported_is_a_clear_error(tmp_path: Path) -> None:
    model = tmp_path / "not-a-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(ConfigError, match="embedding_runtime: torch") as exc:
        ensure_exported(model, tmp_path / "cache", "int8", log=lambda msg: None)
    assert "exporting the embedding model" in str(exc.value)
    assert not list((tmp_path / "cache").glob("not-a-model-*/model.onnx"))
    with pytest.raises(ConfigError, match="unknown embedding runtime"):
        Embedder(runtime="tensorflow")
