"""The SQLite chunk store of one domain: files, chunks, their terms and vectors.

SQLite is the source of truth; the hnswlib graph and the tantivy lexical index are
derived from it and can always be rebuilt (or brought up to date) from the vectors and
terms kept here. Triggers keep two counts in ``meta`` in the same transaction as the
rows — chunks (``lex_chunks``) and terms in all of them (``lex_terms``) — which BM25's
term weights and mean length need without a pass over the chunks. Stores made before
the counts existed (schema 1) get them on first open (``migrated``). Each thread gets its own
connection (WAL lets readers run beside the one writer); the domain serialises writers.
Chunk ids use AUTOINCREMENT so an id is never reused — it doubles as the vector label.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio_nb.services import private_files
from studio_nb.services.knowledge.types import Chunk, Piece

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, root TEXT NOT NULL, source TEXT NOT NULL, hash TEXT NOT NULL,
    size INTEGER NOT NULL, n_chunks INTEGER NOT NULL, ingested_at REAL NOT NULL,
    UNIQUE (root, source));
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    source TEXT NOT NULL, heading TEXT NOT NULL, start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL, text TEXT NOT NULL, kind TEXT NOT NULL, hash TEXT NOT NULL,
    tokens TEXT NOT NULL, vector BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_file ON chunks(file_id);
"""
SCHEMA_VERSION = 2  # 1: no term counts

#: SQL for the number of space-separated terms in a tokens column
_N_TERMS = "(length({c}) - length(replace({c}, ' ', '')) + ({c} != ''))"
_COUNTS = f"""
CREATE TRIGGER IF NOT EXISTS chunks_count_add AFTER INSERT ON chunks BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'lex_chunks';
    UPDATE meta SET value = CAST(value AS INTEGER) + {_N_TERMS.format(c="new.tokens")} WHERE key = 'lex_terms';
END;
CREATE TRIGGER IF NOT EXISTS chunks_count_drop AFTER DELETE ON chunks BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) - 1 WHERE key = 'lex_chunks';
    UPDATE meta SET value = CAST(value AS INTEGER) - {_N_TERMS.format(c="old.tokens")} WHERE key = 'lex_terms';
END;
"""


@dataclass(frozen=True)
class NewChunk:
    """A piece ready to store: its embedding-text hash, BM25 tokens and unit vector."""

    piece: Piece
    hash: str
    tokens: list[str]
    vector: np.ndarray


class ChunkStore:
    """One domain's ``chunks.sqlite3``; every method may be called from any thread."""

    def __init__(self, path: Path, domain: str) -> None:
        self.path, self.domain = Path(path), domain
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        private_files.sqlite_file(self.path)  # 0600, so SQLite's -wal/-shm are born 0600 too
        with self._conn() as db:
            db.executescript(_SCHEMA)
            #: True when this open counted an older store's chunks and terms
            self.migrated = self._migrate(db)

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> bool:
        counted = db.execute("SELECT 1 FROM meta WHERE key='lex_chunks'").fetchone() is not None
        if not counted:  # a new store, or one from before the counts: count once
            db.execute("INSERT OR REPLACE INTO meta VALUES ('lex_chunks', (SELECT COUNT(*) FROM chunks))")
            db.execute("INSERT OR REPLACE INTO meta VALUES ('lex_terms', "
                       f"(SELECT COALESCE(SUM({_N_TERMS.format(c='tokens')}), 0) FROM chunks))")
        db.executescript(_COUNTS)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        return not counted and db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] > 0

    def _conn(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    def close(self) -> None:
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()

    # -- metadata -------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, **values) -> None:
        with self._conn() as db:
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])

    def counts(self) -> tuple[int, int]:
        db = self._conn()
        return (db.execute("SELECT COUNT(*) FROM files").fetchone()[0], db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    # -- files ------------------------------------------------------------------------
    def roots(self) -> list[str]:
        """Every folder (or file) this domain was ingested from."""
        return [r for (r,) in self._conn().execute("SELECT DISTINCT root FROM files ORDER BY root")]

    def file_hashes(self, root: str) -> dict[str, str]:
        """``{source: content hash}`` of the files ingested from ``root``."""
        rows = self._conn().execute("SELECT source, hash FROM files WHERE root=?", (root,))
        return dict(rows.fetchall())

    def file_chunk_count(self, root: str, source: str) -> int:
        """How many chunks a file holds now (what replacing it gives back to a user's total)."""
        row = self._conn().execute(
            "SELECT COUNT(*) FROM chunks c JOIN files f ON c.file_id=f.id WHERE f.root=? AND f.source=?", (root, source),
        ).fetchone()
        return int(row[0])

    def old_vectors(self, root: str, source: str) -> dict[str, np.ndarray]:
        """Vectors of a file's current chunks by chunk hash, to reuse for unchanged chunks."""
        rows = self._conn().execute(
            "SELECT c.hash, c.vector FROM chunks c JOIN files f ON c.file_id=f.id WHERE f.root=? AND f.source=?",
            (root, source),
        )
        return {h: np.frombuffer(v, dtype=np.float32) for h, v in rows.fetchall()}

    def replace_file(self, root: str, source: str, file_hash: str, size: int, new: list[NewChunk], now: float) -> tuple[list[int], list[int]]:
        """Swap a file's chunks for ``new`` in one transaction; returns (removed, added) ids."""
        with self._conn() as db:
            removed = self._delete_file(db, root, source)
            cur = db.execute(
                "INSERT INTO files (root, source, hash, size, n_chunks, ingested_at) VALUES (?,?,?,?,?,?)",
                (root, source, file_hash, size, len(new), now),
            )
            file_id = cur.lastrowid
            added = []
            for c in new:
                p = c.piece
                cur = db.execute(
                    "INSERT INTO chunks (file_id, source, heading, start_line, end_line, text, kind, hash, tokens, vector)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (file_id, source, p.heading, p.start_line, p.end_line, p.text, p.kind, c.hash,
                     " ".join(c.tokens), np.asarray(c.vector, dtype=np.float32).tobytes()),
                )
                added.append(cur.lastrowid)
        return removed, added

    def remove_file(self, root: str, source: str) -> list[int]:
        with self._conn() as db:
            return self._delete_file(db, root, source)

    @staticmethod
    def _delete_file(db: sqlite3.Connection, root: str, source: str) -> list[int]:
        ids = [r[0] for r in db.execute(
            "SELECT c.id FROM chunks c JOIN files f ON c.file_id=f.id WHERE f.root=? AND f.source=?", (root, source))]
        db.execute("DELETE FROM files WHERE root=? AND source=?", (root, source))
        return ids

    # -- chunks -----------------------------------------------------------------------
    def terms(self, ids: list[int]) -> list[tuple[int, str]]:
        """``(chunk id, space-separated terms)`` of the chunks ``ids`` still stored."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        return self._conn().execute(f"SELECT id, tokens FROM chunks WHERE id IN ({marks})", [int(i) for i in ids]).fetchall()

    def all_terms(self):
        """Every ``(chunk id, terms)``, streamed (what the lexical index is rebuilt from)."""
        return self._conn().execute("SELECT id, tokens FROM chunks ORDER BY id")

    def term_stats(self) -> tuple[int, int]:
        """(chunks, terms in all of them), kept by the triggers."""
        rows = dict(self._conn().execute("SELECT key, value FROM meta WHERE key IN ('lex_chunks', 'lex_terms')"))
        return int(rows.get("lex_chunks", 0)), int(rows.get("lex_terms", 0))

    def chunk_ids(self) -> np.ndarray:
        return np.asarray([r[0] for r in self._conn().execute("SELECT id FROM chunks ORDER BY id")], dtype=np.int64)

    def all_vectors(self, dim: int, ids: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of every chunk, or of the chunks ``ids`` (those still stored)."""
        if ids is None:
            rows = self._conn().execute("SELECT id, vector FROM chunks ORDER BY id").fetchall()
        else:
            rows = []
            for lo in range(0, len(ids), 500):
                part = [int(i) for i in ids[lo : lo + 500]]
                rows += self._conn().execute(
                    f"SELECT id, vector FROM chunks WHERE id IN ({','.join('?' * len(part))}) ORDER BY id", part
                ).fetchall()
        out_ids = np.asarray([r[0] for r in rows], dtype=np.int64)
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        return out_ids, vecs

    def chunks(self, ids: list[int]) -> dict[int, Chunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._conn().execute(
            f"SELECT id, source, heading, start_line, end_line, text, kind FROM chunks WHERE id IN ({marks})",
            [int(i) for i in ids],
        )
        return {r[0]: Chunk(r[0], self.domain, *r[1:]) for r in rows}
