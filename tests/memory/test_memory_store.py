"""MemoryStore behaviour on a real SQLite file: window, recall, cache, namespaces, export.

``_fill`` saves as ``"local"``, the namespace of a caller that names no user, so the
tests that are not about users read back without naming one."""

from __future__ import annotations

import json
import sqlite3

import pytest

from studio_nb.errors import ConfigError, UnknownSessionError
from studio_nb.services.memory import BadTurnError, MemoryContext, MemoryStore, StoredTurn, lexical_terms


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _fill(store: MemoryStore, session: str, pairs: list[tuple[str, str]], user: str = "local") -> list[StoredTurn]:
    return [store.save_turn(StoredTurn.new(session, q, a, user=user)) for q, a in pairs]


@pytest.fixture
def store(tmp_path):
    with MemoryStore(tmp_path / "m.sqlite", window=3, recall_k=2, ttl_s=30.0, clock=Clock()) as s:
        yield s


def test_wal_and_full_sync(store, tmp_path):
    assert store._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with sqlite3.connect(tmp_path / "m.sqlite") as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_window_is_last_turns_in_order(store):
    saved = _fill(store, "s1", [(f"q{i}", f"a{i}") for i in range(7)])
    assert [t.id for t in saved] == sorted(t.id for t in saved)
    ctx = store.load("s1")
    assert isinstance(ctx, MemoryContext)
    assert [t.question for t in ctx.recent] == ["q4", "q5", "q6"]
    assert ctx.recalled == ()
    assert store.load("nobody-yet") == MemoryContext((), ())


def test_lexical_recall_works_for_chinese(store):
    _fill(store, "zh", [
        ("SAGE 的知识库怎么用 hnswlib 建索引？", "先 ingest 文档，再用 hnswlib 建向量索引。"),
        ("今天天气怎么样", "我无法查看天气。"),
        ("给我讲个笑话", "程序员的笑话……"),
        ("如何安装 SAGE", "pip install sage"),
        ("你好", "你好！"), ("谢谢", "不客气"), ("再见", "再见"),
    ])
    ctx = store.load("zh", query="知识库的索引是怎么建的")
    assert [t.question for t in ctx.recent] == ["你好", "谢谢", "再见"]
    assert ctx.recalled[0].question.startswith("SAGE 的知识库")
    assert all(t.question != "给我讲个笑话" for t in ctx.recalled)  # no overlap, not recalled
    assert "知识" in lexical_terms("知识库") and "识库" in lexical_terms("知识库")


def test_recall_uses_stored_embeddings(tmp_path, real_embedder):

    class Counting:
        def __init__(self, inner):
            self.inner, self.texts = inner, 0

        def encode(self, texts, **kw):
            self.texts += len(texts)
            return self.inner.encode(texts, **kw)

    emb = Counting(real_embedder)
    store = MemoryStore(tmp_path / "m.sqlite", window=2, recall_k=1, embedder=emb)
    _fill(store, "en", [
        ("How do I bake sourdough bread at home?", "Feed your starter, then proof the dough overnight."),
        ("Which planet is the largest?", "Jupiter."),
        ("Recommend a sci-fi novel", "Try Dune."),
        ("thanks", "you're welcome"), ("bye", "bye"),
    ])
    assert emb.texts == 5  # one embedding per saved turn
    rows = store._conn.execute("SELECT length(embedding) FROM turns").fetchall()
    assert {r[0] for r in rows} == {4 * emb.inner.dim}
    ctx = store.load("en", query="tips for a loaf made with natural yeast")
    assert [t.question for t in ctx.recalled] == ["How do I bake sourdough bread at home?"]
    assert emb.texts == 6  # only the query was embedded; history was read from SQLite


def test_chinese_recall_with_english_embedder_is_not_fooled(tmp_path, real_embedder):
    store = MemoryStore(tmp_path / "m.sqlite", window=2, recall_k=1, embedder=real_embedder)
    _fill(store, "zh", [
        ("给我讲个笑话", "程序员的笑话……"),  # the English model scores this 0.84 against the query
        ("SAGE 的知识库怎么用 hnswlib 建索引？", "先 ingest 文档，再用 hnswlib 建向量索引。"),
        ("今天天气怎么样", "我无法查看天气。"),
        ("你好", "你好！"), ("再见", "再见"),
    ])
    ctx = store.load("zh", query="知识库的索引是怎么建的")
    assert [t.question for t in ctx.recalled] == ["SAGE 的知识库怎么用 hnswlib 建索引？"]


def test_ttl_cache_hits_and_invalidation(tmp_path):
    clock = Clock()
    store = MemoryStore(tmp_path / "m.sqlite", window=2, ttl_s=10.0, clock=clock)
    _fill(store, "s", [("q1", "a1")])
    first = store.load("s", "q")
    assert store.load("s", "q") is first and store.cache_hits == 1
    _fill(store, "s", [("q2", "a2")])  # a save drops the cached context of that session
    assert [t.question for t in store.load("s", "q").recent] == ["q1", "q2"]
    again = store.load("s", "q")
    assert store.load("s", "q") is again
    clock.now += 11  # expired
    misses = store.cache_misses
    assert store.load("s", "q") is not again and store.cache_misses == misses + 1
    store.clear("s")
    assert store.load("s", "q") == MemoryContext((), ())


def test_sessions_are_listed_per_user(store):
    _fill(store, "a1", [("first question about a really long topic " * 3, "x"), ("second", "y")], user="alice")
    _fill(store, "b1", [("bob asks", "z")], user="bob")
    assert store.exists("a1", "alice") and not store.exists("a1", "bob") and not store.exists("zzz", "alice")
    mine = store.sessions(user="alice")
    assert [s.session_id for s in mine] == ["a1"] and mine[0].turns == 2
    assert len(mine[0].title) <= 60 and mine[0].title.startswith("first question")
    assert {(s.user, s.session_id) for s in store.sessions()} == {("alice", "a1"), ("bob", "b1")}
    with pytest.raises(UnknownSessionError):
        store.history("a1", user="bob")
    assert len(store.history("a1", user="alice")) == 2


def test_unknown_session_errors_and_clear(store):
    for call in (store.history, store.export, store.clear):
        with pytest.raises(UnknownSessionError, match="no session 'ghost'"):
            call("ghost")
    _fill(store, "c", [("q1", "a1"), ("q2", "a2")])
    assert store.clear("c") == 2
    assert not store.exists("c")
    with pytest.raises(UnknownSessionError):
        store.clear("c")


def test_export_markdown_and_json(store):
    store.save_turn(StoredTurn.new("e", "什么是 SAGE?", "一个数据流框架。", user="alice", intent="KNOWLEDGE_QUERY",
                             sources=[{"ref": "docs/intro.md:L1-L9 § 简介"}]))
    md = store.export("e", user="alice")
    assert "# 什么是 SAGE?" in md and "**A:** 一个数据流框架。" in md and "docs/intro.md:L1-L9 § 简介" in md
    data = json.loads(store.export("e", fmt="json", user="alice"))
    assert data["session"]["user"] == "alice"
    assert data["turns"][0]["sources"] == [{"ref": "docs/intro.md:L1-L9 § 简介"}]
    with pytest.raises(ConfigError):
        store.export("e", fmt="pdf", user="alice")


def test_same_request_id_is_saved_once(store):
    t = StoredTurn.new("r", "q", "a", request_id="req-1")
    first, second = store.save_turn(t), store.save_turn(t)
    assert first.id == second.id and len(store.history("r")) == 1


@pytest.mark.parametrize("bad, field", [
    (dict(session_id=""), "session_id"),
    (dict(user="  "), "user"),
    (dict(question=None), "question"),
    (dict(created_at=float("nan")), "created_at"),
    (dict(sources=({"x": object()},)), "sources"),
])
def test_bad_turns_are_refused_and_nothing_is_written(store, bad, field):
    base = StoredTurn.new("s", "q", "a")
    with pytest.raises(BadTurnError, match=field) as err:
        store.save_turn(StoredTurn(**{**base.__dict__, **bad}))
    assert err.value.code == "bad_turn"
    assert store.sessions() == []


def test_one_session_rule_foreign_and_missing_sessions_look_alike(tmp_path):
    """Issue #11 F6, and #21 F7: history/clear/export and check_session answer an id the
    caller never used alike, whether another user has a session of that name or not; a
    turn saved under it starts the caller's own session (nothing is claimed)."""
    from studio_nb.access import check_session

    store = MemoryStore(tmp_path / "m.sqlite3")
    store.save_turn(StoredTurn.new("alice-s", "q", "a", user="alice"))
    for op in (lambda sid: store.history(sid, user="bob"), lambda sid: store.clear(sid, user="bob"),
               lambda sid: store.export(sid, user="bob"),
               lambda sid: check_session(store, sid, "bob", must_exist=True)):
        answers = []
        for sid in ("alice-s", "missing-s"):
            with pytest.raises(UnknownSessionError) as err:
                op(sid)
            answers.append((err.value.code, str(err.value).replace(sid, "<id>")))
        assert answers[0] == answers[1] and answers[0][0] == "unknown_session"
    assert check_session(store, "alice-s", "bob", must_exist=False) == "bob"  # his own, new
    store.save_turn(StoredTurn.new("alice-s", "q2", "a2", user="bob"))  # bob's "alice-s", not hers
    assert [t.question for t in store.history("alice-s", user="bob")] == ["q2"]
    assert [t.question for t in store.history("alice-s", user="alice")] == ["q"]
    assert check_session(store, "alice-s", "alice", must_exist=True) == "alice"
    assert store.clear("alice-s", user="alice") == 1
    assert [t.question for t in store.history("alice-s", user="bob")] == ["q2"]
