"""Traces stored with their turns, and databases made before that column existed."""

from __future__ import annotations

import sqlite3

import pytest

from studio_nb.errors import UnknownSessionError
from studio_nb.services.memory import MemoryStore, StoredTurn

OLD_SCHEMA = """
CREATE TABLE sessions (session_id TEXT PRIMARY KEY, user TEXT NOT NULL, title TEXT NOT NULL,
    created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE TABLE turns (id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE, user TEXT NOT NULL,
    question TEXT NOT NULL, answer TEXT NOT NULL, intent TEXT NOT NULL, sources TEXT NOT NULL,
    created_at REAL NOT NULL, request_id TEXT NOT NULL, embedding BLOB);
INSERT INTO sessions VALUES ('old', 'alice', 'old question', 1.0, 1.0);
INSERT INTO turns(session_id, user, question, answer, intent, sources, created_at, request_id)
    VALUES ('old', 'alice', 'old question', 'old answer', 'GENERAL_CHAT', '[]', 1.0, 'r-old');
"""


def test_an_old_database_gains_the_trace_column_and_keeps_its_turns(tmp_path):
    path = tmp_path / "memory.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
    store = MemoryStore(path)
    again = MemoryStore(path)  # a second process opening the migrated database: nothing to do
    try:
        columns = [r[1] for r in store._conn.execute("PRAGMA table_info(turns)")]
        assert columns[-1] == "trace"
        (old,) = store.history("old", user="alice")
        assert (old.question, old.answer, old.request_id) == ("old question", "old answer", "r-old")
        turn, trace = store.trace("old", user="alice")
        assert turn.request_id == "r-old" and trace is None  # saved before traces were kept
        assert store.save_trace("old", "r-old", {"records": [], "format": 1}, user="alice")
        assert again.trace("old", "r-old", user="alice")[1] == {"records": [], "format": 1}
    finally:
        store.close()
        again.close()


def test_traces_follow_their_turn_and_the_ownership_rule(tmp_path):
    store = MemoryStore(tmp_path / "m.sqlite3")
    try:
        first = store.save_turn(StoredTurn.new("s", "q1", "a1", user="alice", request_id="r1"))
        store.save_turn(StoredTurn.new("s", "q2", "a2", user="alice", request_id="r2"))
        assert store.save_trace("s", "r1", {"records": [1]}, user="alice")
        assert store.save_trace("s", "r2", '{"records": [2]}', user="alice")
        assert not store.save_trace("s", "missing", {"records": []}, user="alice")
        assert not store.save_trace("s", "r1", {"records": ["bob's"]}, user="bob")  # not his turn
        assert store.trace("s", user="alice")[1] == {"records": [2]}  # the session's last turn
        turn, trace = store.trace("s", "r1", user="alice")
        assert turn.id == first.id and trace == {"records": [1]}
        assert store.trace("s", "nope", user="alice") is None
        with pytest.raises(UnknownSessionError):
            store.trace("s", user="bob")  # someone else's session looks like no session
        assert [t.question for t in store.history("s", user="alice")] == ["q1", "q2"]  # history stays light
    finally:
        store.close()
