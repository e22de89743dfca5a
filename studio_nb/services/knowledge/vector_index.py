"""The dense index: an hnswlib cosine graph whose labels are chunk row ids.

hnswlib cannot delete, only hide (``mark_deleted``); replaced chunks get new row ids, so
labels are never reused. The graph is rebuilt from the vectors kept in SQLite when it is
missing or mostly hidden elements, and brought up to date (``labels`` against the store's
ids) when it is only behind. Saving writes a temporary file and renames it,
so a crash never leaves a torn index; the file is made owner-only before it is renamed into
place (hnswlib creates it with the umask's mode). hnswlib is imported lazily.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from studio_nb.services import private_files


class VectorIndex:
    """Approximate cosine search over unit vectors; not thread-safe for writes (the
    domain serialises writers and keeps readers out while it writes)."""

    def __init__(self, dim: int, m: int = 16, ef_construction: int = 200, ef_search: int = 100) -> None:
        self.dim, self.m, self.ef_construction, self.ef_search = dim, m, ef_construction, ef_search
        self._index = None
        self._deleted = 0

    def _new(self, capacity: int):
        import hnswlib

        index = hnswlib.Index(space="cosine", dim=self.dim)
        index.init_index(max_elements=max(capacity, 16), ef_construction=self.ef_construction, M=self.m)
        index.set_ef(self.ef_search)
        return index

    def build(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """A fresh graph over exactly these vectors."""
        self._index = self._new(max(len(ids) * 2, 1024))
        self._deleted = 0
        if len(ids):
            self._index.add_items(vectors, ids)

    def load(self, path: Path, live: int) -> None:
        """Load a saved graph known to hold ``live`` visible vectors (the store's count)."""
        import hnswlib

        index = hnswlib.Index(space="cosine", dim=self.dim)
        index.load_index(str(path), max_elements=0)
        index.set_ef(self.ef_search)
        self._index = index
        self._deleted = index.element_count - live

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        self._index.save_index(str(tmp))
        os.chmod(tmp, private_files.FILE_MODE)
        os.replace(tmp, path)

    @property
    def live(self) -> int:
        return 0 if self._index is None else self._index.element_count - self._deleted

    @property
    def deleted(self) -> int:
        return self._deleted

    def labels(self) -> np.ndarray:
        """Every label in the graph, hidden ones included."""
        if self._index is None:
            return np.zeros(0, dtype=np.int64)
        return np.asarray(self._index.get_ids_list(), dtype=np.int64)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if self._index is None:
            self._index = self._new(max(len(ids) * 2, 1024))
        need = self._index.element_count + len(ids)
        if need > self._index.max_elements:
            self._index.resize_index(max(need, self._index.max_elements * 2))
        if len(ids):
            self._index.add_items(vectors, ids)

    def catch_up(self, ids: np.ndarray, vectors_of) -> tuple[int, int]:
        """Make the graph hold exactly the chunk ids ``ids`` (the store's): add the missing
        ones (``vectors_of(ids) -> (ids, vectors)`` reads them) and hide the rest. Returns
        (added, hidden); cheap when the graph is only a few writes behind."""
        have = self.labels()
        missing, extra = np.setdiff1d(ids, have), np.setdiff1d(have, ids)
        hidden_before = self._deleted
        self.remove(extra)
        if len(missing):
            found, vectors = vectors_of(missing)
            self.add(found, vectors)
        self._deleted = (self._index.element_count if self._index is not None else 0) - len(ids)
        return len(missing), max(0, self._deleted - hidden_before)

    def remove(self, ids) -> None:
        for label in ids:
            try:
                self._index.mark_deleted(int(label))
                self._deleted += 1
            except RuntimeError:  # already deleted or never added: nothing to hide
                pass

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top ``k`` ``(id, cosine similarity)``, best first."""
        k = min(k, self.live)
        if k <= 0:
            return []
        if k > self.ef_search:  # hnswlib needs ef >= k; benign if two searches race here
            self._index.set_ef(k)
        labels, dist = self._index.knn_query(vector.reshape(1, -1), k=k)
        return [(int(i), float(1.0 - d)) for i, d in zip(labels[0], dist[0])]
