"""Issue #21 F7: a session id is a name within its user's namespace, in the store itself.

alice's "s1" and bob's "s1" are two sessions; a database made with the schema that keyed
sessions by id alone is migrated in place and keeps every turn; the recent-turn log keeps
users apart as well; and the file is born owner-only.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading

import pytest

from studio_nb.access import check_session
from studio_nb.errors import UnknownSessionError
from studio_nb.services.memory import MemoryStore, StoredTurn

#: the schema studio-nb created before sessions were namespaced (copied from that version)
SCHEMA_BEFORE_NAMESPACES = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    user       TEXT NOT NULL,
    title      TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
    user       TEXT NOT NULL,
    question   TEXT NOT NULL,
    answer     TEXT NOT NULL,
    intent     TEXT NOT NULL,
    sources    TEXT NOT NULL,
    created_at REAL NOT NULL,
    request_id TEXT NOT NULL,
    embedding  BLOB,
    trace      TEXT
);
CREATE INDEX IF NOT EXISTS turns_by_session ON turns(session_id, id);
CREATE UNIQUE INDEX IF NOT EXISTS turns_by_request ON turns(session_id, request_id)
    WHERE request_id != '';
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions(user, updated_at);
"""


def _old_database(path) -> list[tuple]:
    """A database as the previous version wrote it: alice's 's1' (2 turns, one with a
    trace and an embedding), bob's 'b1', and a deleted turn so ids have a gap."""
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_BEFORE_NAMESPACES)
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("INSERT INTO sessions VALUES ('s1', 'alice', 'first', 1.0, 3.0)")
        conn.execute("INSERT INTO sessions VALUES ('b1', 'bob', 'his', 2.0, 2.0)")
        rows = [("s1", "alice", "first", "a1", "r1", b"\x00\x00\x80?", '{"records": []}'),
                ("b1", "bob", "his", "b", "rb", None, None),
                ("s1", "alice", "gone", "x", "rx", None, None),
                ("s1", "alice", "second", "a2", "r2", None, None)]
        for i, (sid, user, q, a, rid, emb, trace) in enumerate(rows):
            conn.execute("INSERT INTO turns(session_id, user, question, answer, intent, sources, created_at,"
                         " request_id, embedding, trace) VALUES (?,?,?,?,'GENERAL_CHAT','[]',?,?,?,?)",
                         (sid, user, q, a, float(i + 1), rid, emb, trace))
        conn.execute("DELETE FROM turns WHERE request_id = 'rx'")
        return conn.execute("SELECT id, session_id, user, question, answer, request_id, embedding, trace"
                            " FROM turns ORDER BY id").fetchall()


def test_a_database_keyed_by_session_id_alone_is_migrated_and_keeps_every_turn(tmp_path):
    path = tmp_path / "memory.sqlite3"
    before = _old_database(path)
    opened: list[MemoryStore] = []
    errors: list[BaseException] = []

    def open_it() -> None:  # two processes (here: connections) opening it at once both succeed
        try:
            opened.append(MemoryStore(path))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(opened) == 2
    store = opened[0]
    try:
        conn = store._conn
        keys = [r[1] for r in sorted(conn.execute("PRAGMA table_info(sessions)"), key=lambda r: r[5]) if r[5]]
        assert keys == ["user", "session_id"]
        after = conn.execute("SELECT id, session_id, user, question, answer, request_id, embedding, trace"
                             " FROM turns ORDER BY id").fetchall()
        assert after == before  # same ids (with the gap), owners, embeddings, traces
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master")} >= {
            "sessions", "turns", "turns_by_session", "turns_by_request", "sessions_by_user"}
        assert not {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE name LIKE '%_v1'")}
        # the old data reads as before, for its owner
        assert [t.question for t in store.history("s1", user="alice")] == ["first", "second"]
        assert store.trace("s1", "r1", user="alice")[1] == {"records": []}
        assert [(s.user, s.session_id) for s in store.sessions()] == [("alice", "s1"), ("bob", "b1")]
        # ids keep growing after the old ones; a retried save is still saved once
        new = store.save_turn(StoredTurn.new("s1", "third", "a3", user="alice", request_id="r3"))
        assert new.id > max(r[0] for r in before)
        assert store.save_turn(StoredTurn.new("s1", "third", "a3", user="alice", request_id="r3")).id == new.id
        # bob may now have an "s1" of his own; it does not touch hers
        store.save_turn(StoredTurn.new("s1", "bob's s1", "b", user="bob", request_id="r1"))
        assert [t.question for t in store.history("s1", user="bob")] == ["bob's s1"]
        assert store.clear("s1", user="alice") == 3  # the cascade and the clear follow the new key
        assert [t.question for t in store.history("s1", user="bob")] == ["bob's s1"]
        assert opened[1].history("b1", user="bob")[0].question == "his"
    finally:
        for s in opened:
            s.close()


def test_two_users_with_the_same_session_id_never_see_each_other(tmp_path):
    store = MemoryStore(tmp_path / "m.sqlite3", window=4, recall_k=2, ttl_s=60)
    try:
        store.save_turn(StoredTurn.new("s1", "alice's okapi ledger is in vault nine", "noted", user="alice"))
        store.save_turn(StoredTurn.new("s1", "hello", "hi", user="alice"))
        # bob's first load of "s1" comes right after alice's is cached: it must not be served hers
        assert [t.question for t in store.load("s1", "okapi ledger", user="alice").recalled] == []
        assert len(store.load("s1", "okapi ledger", user="alice").recent) == 2
        assert store.load("s1", "okapi ledger", user="bob").recent == ()
        store.save_turn(StoredTurn.new("s1", "bob's question", "bob's answer", user="bob"))
        bob = store.load("s1", "okapi ledger vault", user="bob")
        assert [t.question for t in bob.recent] == ["bob's question"] and bob.recalled == ()
        assert [t.user for t in store.load("s1", user="alice").recent] == ["alice", "alice"]
        assert store.load("s1") == store.load("nobody")  # None is the "local" namespace: empty here
        for user in ("alice", "bob"):
            assert check_session(store, "s1", user, must_exist=True) == user
        with pytest.raises(UnknownSessionError):
            check_session(store, "s1", None, must_exist=True)
        assert store.export("s1", "json", user="bob").count("okapi") == 0
    finally:
        store.close()


def test_the_recent_turn_log_keeps_users_apart_even_with_one_request_id():
    from studio_nb.debug.log import TurnLog
    from studio_nb.turn import Turn as LiveTurn

    log = TurnLog(live=4)
    alice = LiveTurn("alice's question", session_id="s1", request_id="q1", user="alice")
    bob = LiveTurn("bob's question", session_id="s1", request_id="q1", user="bob")
    log.add(alice)
    log.add(bob)  # the same client-chosen request id, the same session name
    assert log.get("q1", "alice") is alice and log.get("q1", "bob") is bob
    assert log.last("s1", "alice") is alice and log.last("s1", "bob") is bob
    assert log.get("q1") is bob  # a trusted caller naming no user gets the newest


def test_the_database_and_its_wal_are_owner_only_under_umask_022(tmp_path):
    old = os.umask(0o022)
    try:
        folder = tmp_path / "new" / "data"
        store = MemoryStore(folder / "memory.sqlite3")
        store.save_turn(StoredTurn.new("s", "private question", "a"))
        names = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
        store.close()
    finally:
        os.umask(old)
    assert names["memory.sqlite3"] == 0o600 and names["memory.sqlite3-wal"] == 0o600, names
    assert set(names.values()) == {0o600}, names
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 == stat.S_IMODE(folder.parent.stat().st_mode)
