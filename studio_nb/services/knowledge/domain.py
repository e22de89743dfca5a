"""One knowledge domain on disk: its chunk store, lexical index and vector graph together.

Layout under ``data_dir/knowledge/<name>/``: ``chunks.sqlite3`` (truth: chunks, vectors,
terms), ``lexical/`` and ``lexical.gen`` (the tantivy index of the terms and the store
generation it matches), ``vectors.hnsw`` and ``vectors.gen`` (the same for the graph).
Nothing is rebuilt at open: both indexes are on disk. A write changes only the rows of
its files — in SQLite, in the lexical index (one commit) and in the graph in memory —
and bumps the store's generation before and after; a lexical index found behind the
store at open (a crash between the two commits, or a data dir from before it existed)
is rebuilt from the stored terms. The graph is saved when enough changed since its last save and at ``close``, not
after every write (saving a 100k-chunk graph costs more than a small ingest): a graph
found behind the store's generation at open — after a crash, or another process's
ingest — is brought up to date from the stored vectors (``VectorIndex.catch_up``), and
so is a loaded one whose store another process wrote to (checked at each dense search).
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
from studio_nb.services.knowledge import bm25
from studio_nb.services.knowledge.lexical_index import LexicalIndex
from studio_nb.services.knowledge.rwlock import RWLock
from studio_nb.services.knowledge.store import ChunkStore, NewChunk
from studio_nb.services.knowledge.types import Chunk, DomainInfo
from studio_nb.services.knowledge.vector_index import VectorIndex

STORE_FILE, INDEX_FILE, GEN_FILE = "chunks.sqlite3", "vectors.hnsw", "vectors.gen"
LEXICAL_DIR, LEXICAL_GEN = "lexical", "lexical.gen"


class Domain:
    """Loaded state of one domain; searches share it, writes take it exclusively."""

    def __init__(self, name: str, path: Path, store: ChunkStore, dim: int, model: str, owner: str = "") -> None:
        self.name, self.path, self.store, self.dim, self.model = name, path, store, dim, model
        self.owner = owner  # "" = shared; else the user whose private domain this is
        self.lock = RWLock()
        self.ingest_lock = threading.Lock()  # one ingest per domain at a time (diff, embed, apply)
        self.compact_min = 256  # hidden vectors tolerated before the graph is rebuilt
        self.save_min = 2000  # unsaved graph changes tolerated (and a 20th of the graph) before a save
        self.vectors = VectorIndex(dim)
        self.terms = LexicalIndex(path / LEXICAL_DIR)
        #: True when this open built the lexical index from the stored terms (missing or behind)
        self.lexical_rebuilt = False
        self._graph_gen = ""  # the store generation the graph in memory matches
        self._unsaved = 0  # graph changes since it was last saved
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
        index_file, gen_file = self.path / INDEX_FILE, self.path / GEN_FILE
        gen = self.store.get_meta("generation", "0")
        lex_gen = self.path / LEXICAL_GEN
        if not (self.terms.open() and lex_gen.exists() and lex_gen.read_text().strip() == gen):
            self.terms.rebuild(self.store.all_terms())
            private_files.write_file(lex_gen, gen)
            self.lexical_rebuilt = True
        loaded = False
        if index_file.exists():
            try:
                self.vectors.load(index_file, self.store.counts()[1])
                loaded = True
            except (RuntimeError, OSError, ValueError):
                loaded = False
        if not loaded:
            self._rebuild_vectors(gen)
        elif gen_file.exists() and gen_file.read_text().strip() == gen:
            self._graph_gen = gen
        else:
            self._catch_up(gen)

    def _catch_up(self, gen: str) -> None:
        """Bring the graph to the store's chunks (it was saved behind them)."""
        added, hidden = self.vectors.catch_up(self.store.chunk_ids(), lambda ids: self.store.all_vectors(self.dim, ids))
        self._graph_gen = gen
        if added + hidden:
            self._unsaved += added + hidden  # saved with the next save, or at close
        else:
            private_files.write_file(self.path / GEN_FILE, gen)  # the saved graph was complete after all

    def _rebuild_vectors(self, gen: str) -> None:
        ids, vecs = self.store.all_vectors(self.dim)
        self.vectors.build(ids, vecs)
        self._graph_gen = gen
        self._save_vectors()

    def _save_vectors(self) -> None:
        self.vectors.save(self.path / INDEX_FILE)
        private_files.write_file(self.path / GEN_FILE, self._graph_gen)
        self._unsaved = 0

    def _refresh(self) -> None:
        """Catch up with writes another process made to the store since we last looked."""
        if self.store.get_meta("generation", "0") == self._graph_gen:
            return
        with self.lock.write():
            gen = self.store.get_meta("generation", "0")
            if gen != self._graph_gen:
                self._catch_up(gen)
                self.terms.reload()

    def close(self) -> None:
        with self.lock.write():
            if self._unsaved and self.vectors.live + self.vectors.deleted:
                self._save_vectors()
            self.terms.close()
            self.store.close()

    def destroy(self) -> None:
        with self.lock.write():
            self.terms.close()
            self.store.close()
            self._unsaved = 0
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
            self.store.set_meta(generation=gen)  # a crash from here on leaves the saved graph marked stale
            now = time.time()
            dropped_ids: list[int] = []
            added_terms: list[tuple[int, str]] = []
            for source in removed:
                gone = self.store.remove_file(root, source)
                self.vectors.remove(gone)
                dropped_ids += gone
                n_removed += len(gone)
            for source, file_hash, size, new in changed:
                gone, added = self.store.replace_file(root, source, file_hash, size, new, now)
                self.vectors.remove(gone)
                if added:
                    self.vectors.add(np.asarray(added, dtype=np.int64), np.stack([c.vector for c in new]))
                dropped_ids += gone
                added_terms += [(i, " ".join(c.tokens)) for i, c in zip(added, new)]
                n_removed += len(gone)
                n_added += len(added)
            self.terms.update(dropped_ids, added_terms)
            self._graph_gen = str(gen + 1)
            self.store.set_meta(updated_at=now, generation=self._graph_gen)
            private_files.write_file(self.path / LEXICAL_GEN, self._graph_gen)
            self._unsaved += n_added + n_removed
            if self.vectors.deleted > max(self.vectors.live, self.compact_min):
                self._rebuild_vectors(self._graph_gen)  # mostly hidden elements: compact
            elif self._unsaved > max(self.save_min, self.vectors.live // 20):
                self._save_vectors()
        return n_added, n_removed

    # -- reads ------------------------------------------------------------------------
    def dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        self._refresh()
        with self.lock.read():
            return self.vectors.search(vector, k)

    def lexical(self, tokens: list[str], k: int, idf: dict[str, float] | None = None) -> list[tuple[int, float]]:
        """Top ``k`` by BM25 with the term weights ``idf`` (None: this domain's own): the
        lexical index's candidates, scored from their stored terms."""
        self._refresh()
        return bm25.search(self.terms, self.store, tokens, k, idf)

    def term_frequencies(self, tokens: list[str]) -> tuple[int, dict[str, int]]:
        """(chunks, {term: chunks containing it}) for the query terms: this domain's part of
        the term weights of a search over several domains."""
        return self.store.term_stats()[0], self.terms.dfs(set(tokens))

    def df(self, term: str) -> int:
        """How many of this domain's chunks contain ``term`` (a tokenizer term)."""
        return self.terms.df(term)

    @property
    def size(self) -> int:
        """How many chunks the domain holds."""
        return self.store.counts()[1]

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
