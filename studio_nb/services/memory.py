"""Conversation memory: every turn in SQLite, a short-term window plus long-term recall.

Why SQLite in WAL mode with ``synchronous=FULL``: the server tells the user a turn is
saved only after ``save_turn`` returns, so the row must be on disk by then, whatever
happens to the process next (the crash test kills a writer with SIGKILL and checks every
acknowledged turn). WAL lets readers (``load``) run while a writer commits.

``load`` gives the prompt builder two things: the last ``window`` turns in order (what
the user just said) and up to ``recall_k`` older turns most relevant to the new question
(what they said long ago that matters now). Relevance is a lexical score built from
the one tokenizer's terms (``services.tokenizer``: words, jieba words and CJK character
bigrams), and, when an embedder is injected, embedding
similarity. The default embedding model is English-only: between Chinese texts its
similarities are noise (measured: for the question "知识库的索引是怎么建的" an unrelated
Chinese joke scored 0.84, the turn about index building 0.44). So the dense score is
weighted by the share of non-CJK characters in the question and the lexical score gets
the rest; pass ``multilingual=True`` with a multilingual embedder to trust it fully. Turn embeddings are stored as float32 bytes next to the turn,
so recall never re-embeds history.

Each turn row also keeps the JSON trace of the turn (``save_trace``/``trace``: what every
operator received and produced), so a past turn can be inspected, and replayed, after a
restart.

**A session id is a name within its user's namespace**: alice's ``"s1"`` and bob's
``"s1"`` are two sessions (the key is ``(user, session_id)``), so there is no session of
another user to find, probe or claim — bob asking in ``"s1"`` talks in his own. Every
method takes ``user``; ``user=None`` is a trusted in-process caller and means the
``"local"`` namespace, the one notebooks, the CLI and ``StoredTurn.new`` use by default
(``studio_nb.access.LOCAL_USER``). Only ``sessions(user=None)`` lists every namespace.

Databases made by older versions are brought up to this schema when opened
(``_migrate``, in one transaction): the ``trace`` column is added, and sessions keyed by
id alone are re-keyed by (user, id) — each keeps its one owner, so existing data dirs
keep working. The file is created owner-only (``private_files``): its WAL holds the text
of every recent turn.

Loads are cached per session for ``ttl_s`` seconds (the pipeline loads memory on every
request, often for the same session); a save or clear of a session drops its entries.
One connection guarded by a lock serves all threads: each statement is short and the
slow part (embedding) happens outside the lock.
"""

from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from studio_nb.access import check_session, namespace
from studio_nb.services import private_files
from studio_nb.services.text import cjk_share
from studio_nb.services.tokenizer import tokenize
from studio_nb.errors import ConfigError, StudioError
from studio_nb.records import MemoryContext, StoredTurn

TITLE_CHARS = 60
EMBED_TEXT_CHARS = 2000
MAX_CACHED_SESSIONS = 256
MAX_CACHED_QUERIES = 16

#: the schema, one statement each (``_migrate`` runs them inside its transaction)
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS sessions (
    user       TEXT NOT NULL,
    session_id TEXT NOT NULL,
    title      TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (user, session_id)
)""",
    """CREATE TABLE IF NOT EXISTS turns (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    user       TEXT NOT NULL,
    question   TEXT NOT NULL,
    answer     TEXT NOT NULL,
    intent     TEXT NOT NULL,
    sources    TEXT NOT NULL,
    created_at REAL NOT NULL,
    request_id TEXT NOT NULL,
    embedding  BLOB,
    trace      TEXT,
    FOREIGN KEY (user, session_id) REFERENCES sessions(user, session_id) ON DELETE CASCADE
)""",
    "CREATE INDEX IF NOT EXISTS turns_by_session ON turns(user, session_id, id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS turns_by_request ON turns(user, session_id, request_id) WHERE request_id != ''",
    "CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions(user, updated_at)",
)
#: the indexes of the schema before sessions were keyed by user (dropped by the migration)
_OLD_INDEXES = ("turns_by_session", "turns_by_request", "sessions_by_user")

_TURN_COLUMNS = "id, session_id, user, question, answer, intent, sources, created_at, request_id"


class BadTurnError(StudioError, ValueError):
    """A turn that cannot be stored (missing session id, non-JSON sources, ...)."""

    code = "bad_turn"


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    user: str
    title: str
    created_at: float
    updated_at: float
    turns: int


@dataclass
class _CacheEntry:
    expires: float
    contexts: dict[str | None, MemoryContext] = field(default_factory=dict)


# --- lexical relevance ------------------------------------------------------------

def lexical_terms(text: str) -> set[str]:
    """The search terms of ``text`` (``services.tokenizer``, as the knowledge base and the
    evidence selector see them): stemmed words without stopwords, identifier parts, and
    for Chinese jieba words plus character bigrams, so "知识库" meets "知识" and "识库"."""
    return set(tokenize(text))


def lexical_score(query_terms: set[str], text: str) -> float:
    """Share of the query's terms found in ``text`` (0..1)."""
    if not query_terms:
        return 0.0
    return len(query_terms & lexical_terms(text)) / len(query_terms)


def _turn_text(question: str, answer: str) -> str:
    return f"{question}\n{answer}"[:EMBED_TEXT_CHARS]


# --- the store ----------------------------------------------------------------------


class MemoryStore:
    """Per-session conversation memory in one SQLite file (see the module docstring).

    ``embedder`` is anything with ``encode(list[str]) -> (n, dim) float32 unit vectors``
    (``studio_nb.services.embeddings.Embedder``); without one recall is lexical.
    ``min_score`` drops recalled turns that share (almost) nothing with the question, so
    an unrelated old turn never pads the prompt. ``clock`` is injectable for TTL tests.
    """

    def __init__(
        self,
        path: str | Path,
        window: int = 6,
        recall_k: int = 3,
        ttl_s: float = 30.0,
        embedder: Any = None,
        *,
        multilingual: bool = False,
        min_score: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if window < 0 or recall_k < 0 or ttl_s < 0:
            raise ConfigError(f"window, recall_k and ttl_s must be >= 0, got {window}, {recall_k}, {ttl_s}")
        self.path = Path(path)
        self.window = window
        self.recall_k = recall_k
        self.ttl_s = ttl_s
        self.embedder = embedder
        self.multilingual = multilingual
        self.min_score = min_score
        self._clock = clock
        self._lock = threading.RLock()
        self._cache: OrderedDict[tuple[str, str], _CacheEntry] = OrderedDict()  # (user, session) -> loads
        self.cache_hits = 0
        self.cache_misses = 0
        self._writes = 0  # bumped by every save/clear; a load caches only if it saw none
        if str(path) != ":memory:":
            private_files.sqlite_file(self.path)  # 0600 before SQLite makes its -wal/-shm with the same mode
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30.0)
        _wal(self._conn)
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._migrate()
        for statement in _SCHEMA:
            self._conn.execute(statement)

    def __repr__(self) -> str:
        return (f"MemoryStore({str(self.path)!r}, window={self.window}, recall_k={self.recall_k}, "
                f"ttl_s={self.ttl_s}, embedder={'yes' if self.embedder else 'no'})")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> "MemoryStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ----------------------------------------------------------------

    def save_turn(self, turn: StoredTurn) -> StoredTurn:
        """Store ``turn`` in session ``(turn.user, turn.session_id)`` and return it with its
        ``id``; durable on disk when this returns.

        Saving twice with the same ``request_id`` (a retried saver) returns the stored
        turn instead of a duplicate. The first turn of a session creates it.
        """
        sources_json = self._check(turn)
        blob = self._embed_blob(_turn_text(turn.question, turn.answer))
        key = (turn.user, turn.session_id)
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT OR IGNORE INTO sessions(user, session_id, title, created_at, updated_at) VALUES (?,?,?,?,?)",
                    (*key, _title(turn.question), turn.created_at, turn.created_at),
                )
                if turn.request_id:
                    dup = conn.execute(
                        f"SELECT {_TURN_COLUMNS} FROM turns WHERE user = ? AND session_id = ? AND request_id = ?",
                        (*key, turn.request_id),
                    ).fetchone()
                    if dup is not None:
                        conn.execute("ROLLBACK")
                        return _row_turn(dup)
                cur = conn.execute(
                    "INSERT INTO turns(session_id, user, question, answer, intent, sources, created_at,"
                    " request_id, embedding) VALUES (?,?,?,?,?,?,?,?,?)",
                    (turn.session_id, turn.user, turn.question, turn.answer, turn.intent, sources_json,
                     turn.created_at, turn.request_id, blob),
                )
                conn.execute(
                    "UPDATE sessions SET updated_at = max(updated_at, ?) WHERE user = ? AND session_id = ?",
                    (turn.created_at, *key),
                )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._invalidate(key)
        return replace(turn, id=cur.lastrowid)

    def save_trace(self, session_id: str, request_id: str, trace: dict | str, *, user: str | None = None) -> bool:
        """Keep the JSON trace of a saved turn with it; False if there is no such turn."""
        text = trace if isinstance(trace, str) else json.dumps(trace, ensure_ascii=False)
        with self._lock:
            cur = self._conn.execute(
                "UPDATE turns SET trace = ? WHERE user = ? AND session_id = ? AND request_id = ?",
                (text, namespace(user), session_id, request_id))
        return cur.rowcount > 0

    def trace(self, session_id: str, request_id: str | None = None, *,
              user: str | None = None) -> tuple[StoredTurn, dict | None] | None:
        """The turn ``request_id`` of a session (default: its last) and its stored trace
        (None for turns saved before traces were kept); None if there is no such turn."""
        ns = namespace(user)
        sql = f"SELECT {_TURN_COLUMNS}, trace FROM turns WHERE user = ? AND session_id = ?"
        args: tuple = (ns, session_id)
        if request_id is not None:
            sql, args = sql + " AND request_id = ?", (*args, request_id)
        with self._lock:
            self._require(session_id, user)
            row = self._conn.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        return _row_turn(row[:9]), (json.loads(row[9]) if row[9] else None)

    def clear(self, session_id: str, *, user: str | None = None) -> int:
        """Delete a session and its turns; returns how many turns were deleted."""
        key = (namespace(user), session_id)
        with self._lock:
            self._require(session_id, user)
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                n = conn.execute("DELETE FROM turns WHERE user = ? AND session_id = ?", key).rowcount
                conn.execute("DELETE FROM sessions WHERE user = ? AND session_id = ?", key)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._invalidate(key)
        return n

    # -- reading ----------------------------------------------------------------

    def load(self, session_id: str, query: str | None = None, *, user: str | None = None) -> MemoryContext:
        """The last ``window`` turns (oldest first) and up to ``recall_k`` relevant older ones.

        Recalled turns come oldest first too, so the prompt reads as a timeline. An unknown
        session is simply empty: a first message has no memory yet.
        """
        key = (namespace(user), session_id)
        now = self._clock()
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None and entry.expires > now and query in entry.contexts:
                self._cache.move_to_end(key)
                self.cache_hits += 1
                return entry.contexts[query]
            self.cache_misses += 1
            generation = self._writes
            rows = self._conn.execute(
                f"SELECT {_TURN_COLUMNS} FROM turns WHERE user = ? AND session_id = ? ORDER BY id DESC LIMIT ?",
                (*key, self.window),
            ).fetchall()
        recent = tuple(_row_turn(r) for r in reversed(rows))
        recalled: tuple[StoredTurn, ...] = ()
        if query and self.recall_k:
            before = recent[0].id if recent else None
            recalled = self._recall(key, query, before)
        ctx = MemoryContext(recent, recalled)
        with self._lock:
            if generation != self._writes:  # a save landed while we read: don't cache stale data
                return ctx
            entry = self._cache.get(key)
            if entry is None or entry.expires <= now:
                entry = self._cache[key] = _CacheEntry(now + self.ttl_s)
            if len(entry.contexts) >= MAX_CACHED_QUERIES:
                entry.contexts.pop(next(iter(entry.contexts)))
            entry.contexts[query] = ctx
            self._cache.move_to_end(key)
            while len(self._cache) > MAX_CACHED_SESSIONS:
                self._cache.popitem(last=False)
        return ctx

    def history(self, session_id: str, *, user: str | None = None) -> list[StoredTurn]:
        """Every turn of a session, oldest first."""
        with self._lock:
            self._require(session_id, user)
            rows = self._conn.execute(
                f"SELECT {_TURN_COLUMNS} FROM turns WHERE user = ? AND session_id = ? ORDER BY id",
                (namespace(user), session_id),
            ).fetchall()
        return [_row_turn(r) for r in rows]

    def sessions(self, user: str | None = None) -> list[SessionInfo]:
        """Sessions of ``user``, most recently updated first; ``None``: every user's (each
        with its ``user``: the one call that looks across namespaces, for the data dir's owner)."""
        sql = ("SELECT s.session_id, s.user, s.title, s.created_at, s.updated_at,"
               " (SELECT count(*) FROM turns t WHERE t.user = s.user AND t.session_id = s.session_id)"
               " FROM sessions s")
        args: tuple = ()
        if user is not None:
            sql += " WHERE s.user = ?"
            args = (user,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY s.updated_at DESC, s.session_id, s.user", args).fetchall()
        return [SessionInfo(*r) for r in rows]

    def exists(self, session_id: str, user: str | None = None) -> bool:
        """Whether ``user`` (None: ``"local"``) has a session called ``session_id``."""
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM sessions WHERE user = ? AND session_id = ?",
                                     (namespace(user), session_id)).fetchone()
        return row is not None

    def export(self, session_id: str, fmt: str = "markdown", *, user: str | None = None) -> str:
        """The whole session as Markdown (for people) or JSON (for programs)."""
        if fmt not in ("markdown", "json"):
            raise ConfigError(f"unknown export format {fmt!r}; use 'markdown' or 'json'")
        turns = self.history(session_id, user=user)
        info = next(s for s in self.sessions(namespace(user)) if s.session_id == session_id)
        if fmt == "json":
            return json.dumps({"session": asdict(info), "turns": [t.to_dict() for t in turns]},
                              ensure_ascii=False, indent=2)
        lines = [f"# {info.title}", "", f"- session: `{info.session_id}`", f"- user: {info.user}",
                 f"- turns: {info.turns}", ""]
        for i, t in enumerate(turns, 1):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t.created_at))
            lines += [f"## {i}. {stamp} UTC · {t.intent}", "", f"**Q:** {t.question}", "", f"**A:** {t.answer}", ""]
            refs = [s.get("ref") or s.get("source") or json.dumps(s, ensure_ascii=False) for s in t.sources]
            if refs:
                lines += ["Sources:", *[f"- {r}" for r in refs], ""]
        return "\n".join(lines)

    # -- internals --------------------------------------------------------------

    def _require(self, session_id: str, user: str | None) -> None:
        check_session(self, session_id, user, must_exist=True)  # the one rule (studio_nb.access)

    def _migrate(self) -> None:
        """Bring a database made by an older studio-nb up to this schema, in one
        transaction (idempotent; two processes opening it at once both succeed).

        Up to now sessions were keyed by id alone, each with one owner: the tables are
        rebuilt keyed by (user, id), every row and turn id kept (the turns' ids are also
        their order and the vector labels nothing else uses). Databases from before traces
        were kept have no ``trace`` column: their turns get NULL.
        """
        conn = self._conn
        if not self._old_schema():
            return
        conn.execute("PRAGMA foreign_keys=OFF")  # only outside a transaction; the rebuild moves both tables
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if self._old_schema():  # another process may have migrated it while we waited
                    has_trace = "trace" in {r[1] for r in conn.execute("PRAGMA table_info(turns)")}
                    for name in _OLD_INDEXES:
                        conn.execute(f"DROP INDEX IF EXISTS {name}")
                    conn.execute("ALTER TABLE sessions RENAME TO sessions_v1")
                    conn.execute("ALTER TABLE turns RENAME TO turns_v1")
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute("INSERT INTO sessions(user, session_id, title, created_at, updated_at)"
                                 " SELECT user, session_id, title, created_at, updated_at FROM sessions_v1")
                    conn.execute(
                        f"INSERT INTO turns({_TURN_COLUMNS}, embedding, trace)"
                        " SELECT t.id, t.session_id, s.user, t.question, t.answer, t.intent,"
                        " t.sources, t.created_at, t.request_id, t.embedding, "
                        + ("t.trace" if has_trace else "NULL")
                        + " FROM turns_v1 t JOIN sessions_v1 s ON s.session_id = t.session_id")
                    conn.execute("DROP TABLE turns_v1")
                    conn.execute("DROP TABLE sessions_v1")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.execute("PRAGMA foreign_keys=ON")

    def _old_schema(self) -> bool:
        """True for a database whose sessions are keyed by id alone (before namespaces)."""
        keys = {r[1] for r in self._conn.execute("PRAGMA table_info(sessions)") if r[5]}
        return bool(keys) and keys != {"user", "session_id"}

    def _invalidate(self, key: tuple[str, str]) -> None:
        self._writes += 1
        self._cache.pop(key, None)

    @staticmethod
    def _check(turn: StoredTurn) -> str:
        if not isinstance(turn, StoredTurn):
            raise BadTurnError(f"save_turn expects a StoredTurn, got {type(turn).__name__}")
        for name in ("session_id", "user"):
            value = getattr(turn, name)
            if not isinstance(value, str) or not value.strip():
                raise BadTurnError(f"turn.{name} must be a non-empty string, got {value!r}")
        for name in ("question", "answer", "intent", "request_id"):
            if not isinstance(getattr(turn, name), str):
                raise BadTurnError(f"turn.{name} must be a string, got {type(getattr(turn, name)).__name__}")
        if not isinstance(turn.created_at, (int, float)) or not math.isfinite(turn.created_at):
            raise BadTurnError(f"turn.created_at must be a finite timestamp, got {turn.created_at!r}")
        try:
            return json.dumps([dict(s) for s in turn.sources], ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise BadTurnError(f"turn.sources must be JSON-serialisable dicts: {exc}") from exc

    def _embed_blob(self, text: str) -> bytes | None:
        if self.embedder is None:
            return None
        import numpy as np

        vec = np.asarray(self.embedder.encode([text]), dtype=np.float32)[0]
        return vec.tobytes()

    def _recall(self, key: tuple[str, str], query: str, before_id: int | None) -> tuple[StoredTurn, ...]:
        if before_id is None:
            return ()
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {_TURN_COLUMNS}, embedding FROM turns WHERE user = ? AND session_id = ? AND id < ?"
                " ORDER BY id",
                (*key, before_id),
            ).fetchall()
        if not rows:
            return ()
        terms = lexical_terms(query)
        scores = [lexical_score(terms, _turn_text(r[3], r[4])) for r in rows]
        if self.embedder is not None:
            scores = self._blend_dense(query, rows, scores)
        ranked = sorted(range(len(rows)), key=lambda i: (-scores[i], -rows[i][0]))
        chosen = sorted(i for i in ranked[: self.recall_k] if scores[i] >= self.min_score)
        return tuple(_row_turn(rows[i][:9]) for i in chosen)

    def _blend_dense(self, query: str, rows: list, lexical: list[float]) -> list[float]:
        """``w`` x cosine + (1 - w) x lexical, ``w`` = the question's non-CJK share (or 1).

        Turns saved without an embedding (embedder added later) are embedded once here
        and written back, so the next recall finds them stored.
        """
        import numpy as np

        q = np.asarray(self.embedder.encode([query]), dtype=np.float32)[0]
        missing = [i for i, r in enumerate(rows) if r[9] is None or len(r[9]) != q.nbytes]
        if missing:
            vecs = np.asarray(self.embedder.encode([_turn_text(rows[i][3], rows[i][4]) for i in missing]),
                              dtype=np.float32)
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany("UPDATE turns SET embedding = ? WHERE id = ?",
                                       [(v.tobytes(), rows[i][0]) for i, v in zip(missing, vecs)])
                self._conn.execute("COMMIT")
            rows = list(rows)
            for i, v in zip(missing, vecs):
                rows[i] = (*rows[i][:9], v.tobytes())
        mat = np.frombuffer(b"".join(r[9] for r in rows), dtype=np.float32).reshape(len(rows), -1)
        dense = mat @ q
        w = 1.0 if self.multilingual else 1.0 - cjk_share(query)
        return [w * float(d) + (1.0 - w) * s for d, s in zip(dense, lexical)]


def _wal(conn: sqlite3.Connection, timeout_s: float = 30.0) -> None:
    """Switch ``conn`` to WAL. Two processes opening a database that is not in WAL mode yet
    (a new one, or one an older tool wrote) race for the switch, and SQLite answers the
    loser "database is locked" at once, without waiting in its busy handler: so wait here."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _title(question: str) -> str:
    first = " ".join(question.split())
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 1] + "…"


def _row_turn(row: tuple) -> StoredTurn:
    id_, session_id, user, question, answer, intent, sources, created_at, request_id = row
    return StoredTurn(session_id, user, question, answer, intent, tuple(json.loads(sources)), created_at, request_id, id_)
