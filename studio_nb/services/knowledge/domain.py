"""One knowledge domain on disk: its chunk store, vector graph and BM25 index together.

Layout under ``data_dir/knowledge/<name>/``: ``chunks.sqlite3`` (truth), ``vectors.hnsw``
and ``vectors.gen`` (the store generation the graph matches). A write bumps the store's
generation before touching chunks and stamps the graph after saving it, so a crash in
between is detected at the next load and the graph is rebuilt from the stored vectors.
The folder and every file in it are owner-only (``private_files``): they hold the text
of what was ingested, a user's private upload included.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np

from studio_nb.errors import ConfigError
from studio_nb.services import private_files
from studio_nb.services.knowledge.bm25 import BM25Index
from studio_nb.services.knowledge.rwlock import RWLock
from studio_nb.services.knowledge.store import ChunkStore, NewChunk
from studio_nb.services.knowledge.types import Chunk, DomainInfo
from studio_nb.services.knowledge.vector_index import VectorIndex

STORE_FILE, INDEX_FILE, GEN_FILE = "chunks.sqlite3", "vectors.hnsw", "vectors.gen"


class Domain:
    """Loaded state of one domain; searches share it, writes take it exclusively."""

    def __init__(self, name: str, path: Path, store: ChunkStore, dim: int, model: str, owner: str = "") -> None:
        self.name, self.path, self.store, self.dim, self.model = name, path, store, dim, model
        self.owner = owner  # "" = shared; else the user whose private domain this is
        self.lock = RWLock()
        self.ingest_lock = threading.Lock()  # one ingest per domain at a time (diff, embed, apply)
        self.compact_min = 256  # hidden vectors tolerated before the graph is rebuilt
        self.vectors = VectorIndex(dim)
        self.bm25 = BM25Index([])

    # -- lifecycle --------------------------------------------------------------------
    @classmethod
    def open(cls, name: str, path: Path, dim: int | None = None, model: str = "", owner: str = "") -> "Domain":
        """Open (creating when ``dim`` is given, owned by ``owner``) and load a domain's indexes."""
        private_files.make_dir(path)
        store = ChunkStore(path / STORE_FILE, name)
        stored_dim = store.get_meta("dim")
        if stored_dim is None:
            if dim is None:
                store.close()
                raise ConfigError(f"knowledge domain {name!r} at {path} has no metadata; fix: remove_domain({name!r}) and ingest again")
            store.set_meta(dim=dim, model=model, generation=0, created_at=time.time(), updated_at=time.time(),
                           owner=owner)
        elif dim is not None and int(stored_dim) != dim:
            store.close()
            raise ConfigError(
                f"knowledge domain {name!r} holds {stored_dim}-d vectors but the embedder makes {dim}-d ones; "
                f"fix: use the model it was built with ({store.get_meta('model')}) or remove_domain({name!r}) and re-ingest"
            )
        dom = cls(name, path, store, int(store.get_meta("dim")), store.get_meta("model", ""),
                  store.get_meta("owner", "") or "")
        dom._load()
        return dom

    def _load(self) -> None:
        files, chunks = self.store.counts()
        index_file, gen_file = self.path / INDEX_FILE, self.path / GEN_FILE
        gen = self.store.get_meta("generation", "0")
        fresh = index_file.exists() and gen_file.exists() and gen_file.read_text().strip() == gen
        if fresh:
            try:
                self.vectors.load(index_file, chunks)
            except (RuntimeError, OSError, ValueError):
                fresh = False
        if not fresh:
            self._rebuild_vectors()
        self.bm25 = BM25Index(self.store.all_tokens())

    def _rebuild_vectors(self) -> None:
        ids, vecs = self.store.all_vectors(self.dim)
        self.vectors.build(ids, vecs)
        self._save_vectors()

    def _save_vectors(self) -> None:
        self.vectors.save(self.path / INDEX_FILE)
        private_files.write_file(self.path / GEN_FILE, self.store.get_meta("generation", "0"))

    def close(self) -> None:
        self.store.close()

    def destroy(self) -> None:
        with self.lock.write():
            self.store.close()
            shutil.rmtree(self.path, ignore_errors=True)

    # -- writes -----------------------------------------------------------------------
    def apply(self, root: str, changed: list[tuple[str, str, int, list[NewChunk]]], removed: list[str]) -> tuple[int, int]:
        """Replace the chunks of ``changed`` files ``(source, hash, size, chunks)`` and drop
        ``removed`` sources, all under ``root``; returns (chunks added, chunks removed)."""
        if not changed and not removed:
            return 0, 0
        n_added = n_removed = 0
        with self.lock.write():
            gen = int(self.store.get_meta("generation", "0")) + 1
            self.store.set_meta(generation=gen)
            now = time.time()
            for source in removed:
                gone = self.store.remove_file(root, source)
                self.vectors.remove(gone)
                n_removed += len(gone)
            for source, file_hash, size, new in changed:
                gone, added = self.store.replace_file(root, source, file_hash, size, new, now)
                self.vectors.remove(gone)
                if added:
                    self.vectors.add(np.asarray(added, dtype=np.int64), np.stack([c.vector for c in new]))
                n_removed += len(gone)
                n_added += len(added)
            self.store.set_meta(updated_at=now)
            if self.vectors.deleted > max(self.vectors.live, self.compact_min):
                self._rebuild_vectors()  # mostly hidden elements: compact
            else:
                self._save_vectors()
            self.bm25 = BM25Index(self.store.all_tokens())
        return n_added, n_removed

    # -- reads ------------------------------------------------------------------------
    def dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        with self.lock.read():
            return self.vectors.search(vector, k)

    def lexical(self, tokens: list[str], k: int, idf: dict[str, float] | None = None) -> list[tuple[int, float]]:
        return self.bm25.search(tokens, k, idf)  # an immutable index, swapped whole on writes

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        return self.store.chunks(ids)

    def info(self) -> DomainInfo:
        files, chunks = self.store.counts()
        index_file = self.path / INDEX_FILE
        return DomainInfo(
            name=self.name, files=files, chunks=chunks, dim=self.dim, model=self.model, path=str(self.path),
            index_bytes=index_file.stat().st_size if index_file.exists() else 0,
            updated_at=float(self.store.get_meta("updated_at", "0")), owner=self.owner,
        )
