"""Helpers for the knowledge tests: a small real-corpus copy, a wrapper that counts what the
real embedder embeds, and a deterministic stand-in used only for bookkeeping logic."""

from __future__ import annotations

import hashlib
import re
import shutil
import threading
from pathlib import Path

import numpy as np

# a handful of real files: English and Chinese Markdown, Python, a Chinese README
SUBSET = {
    "docs/faq.md": "sage_docs/guides/packages/sage-kernel/faq.md",
    "docs/installation.md": "sage_docs/getting-started/installation.md",
    "docs/reranker.md": "sage_docs/guides/packages/sage-libs/rag/components/reranker.md",
    "docs/sage_db.md": "sage_docs/guides/packages/sage-middleware/components/sage_db.md",
    "examples/simple_rag.py": "sage_examples/L3-libs/rag/simple_rag.py",
    "examples/sage_db/README.md": "sage_examples/L4-middleware/sage_db/README.md",
}


def copy_subset(shared_data: Path, dest: Path) -> Path:
    for rel, src in SUBSET.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / src, dest / rel)
    return dest


class CountingEmbedder:
    """Wraps an embedder and records every text it is asked to embed."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.texts: list[str] = []
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.inner.dim

    def warm_up(self) -> None:
        getattr(self.inner, "warm_up", lambda: None)()

    def encode(self, texts, batch_size=None, progress=False):
        with self._lock:
            self.texts.extend(texts)
        return self.inner.encode(texts, batch_size=batch_size, progress=progress)


class HashEmbedder:
    """Deterministic bag-of-words vectors: ONLY for ingest bookkeeping tests, where what
    matters is which texts get embedded, not what the vectors mean."""

    dim = 64

    def encode(self, texts, batch_size=None, progress=False):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            out[row, 0] += 1e-3
        return out / np.linalg.norm(out, axis=1, keepdims=True)
