"""Durability: turns acknowledged by a writer survive SIGKILL; concurrent writers lose nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from studio_nb.services.memory import MemoryStore, StoredTurn

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
from crash_writer import payload  # noqa: E402


def _writer(db: Path, prefix: str, count: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(HERE / "crash_writer.py"), str(db), prefix, str(count)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(REPO))


def _check_acked(store: MemoryStore, prefix: str, acked: dict[int, int]) -> None:
    by_id = {}
    for s in store.sessions(user=prefix):
        for t in store.history(s.session_id, user=s.user):
            by_id[t.id] = t
    for n, turn_id in acked.items():
        session, question, answer = payload(prefix, n)
        t = by_id.get(turn_id)
        assert t is not None, f"acknowledged turn {n} (id {turn_id}) was lost"
        assert (t.session_id, t.question, t.answer, t.request_id) == (session, question, answer, f"{prefix}-{n}")
        assert t.sources == ({"ref": f"doc{n}.md:L1-L2"},)


def test_acknowledged_turns_survive_kill_9(tmp_path):
    db = tmp_path / "memory.sqlite"
    child = _writer(db, "crash", 0)
    acked: dict[int, int] = {}
    try:
        for line in child.stdout:
            _, n, turn_id = line.split()
            acked[int(n)] = int(turn_id)
            if len(acked) >= 60:
                break
        child.send_signal(signal.SIGKILL)  # mid-loop: the next save may be half done
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL, child.stderr.read()
    assert len(acked) == 60
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = MemoryStore(db)
    _check_acked(store, "crash", acked)
    # the child may have saved more than we read before the kill; those are whole and gapless
    saved = [t for s in store.sessions(user="crash") for t in store.history(s.session_id, user=s.user)]
    assert len(saved) >= 60
    assert sorted(int(t.request_id.split("-")[1]) for t in saved) == list(range(len(saved)))
    _check_acked(store, "crash", {int(t.request_id.split("-")[1]): t.id for t in saved})
    # the database stays writable after the crash
    assert store.save_turn(StoredTurn.new("crash-0", "after", "ok", user="crash")).id > max(acked.values())


def test_two_writer_processes_share_one_database(tmp_path):
    db = tmp_path / "memory.sqlite"
    children = {p: _writer(db, p, 40) for p in ("alpha", "beta")}
    acked: dict[str, dict[int, int]] = {}
    for prefix, child in children.items():
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        lines = out.split("\n")
        assert "DONE" in lines
        acked[prefix] = {int(n): int(i) for _, n, i in (ln.split() for ln in lines if ln.startswith("ACK"))}
        assert len(acked[prefix]) == 40
    store = MemoryStore(db)
    for prefix in children:
        _check_acked(store, prefix, acked[prefix])
    ids = [i for a in acked.values() for i in a.values()]
    assert len(set(ids)) == 80


def test_concurrent_writer_threads_lose_nothing(tmp_path):
    store = MemoryStore(tmp_path / "memory.sqlite", window=5)
    threads, per_thread, errors = 8, 25, []
    start = threading.Barrier(threads + 1)

    def write(k: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                store.save_turn(StoredTurn.new(f"own-{k}", f"t{k} q{i}", f"a{i}", user="u"))
                store.save_turn(StoredTurn.new("shared", f"t{k} q{i}", f"a{i}", user="u"))
                store.load("shared", query=f"q{i}")  # readers interleave with writers
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=write, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors
    shared = store.history("shared", user="u")
    assert len(shared) == threads * per_thread
    assert len({t.id for t in shared}) == len(shared)
    for k in range(threads):
        own = store.history(f"own-{k}", user="u")
        assert [t.question for t in own] == [f"t{k} q{i}" for i in range(per_thread)]
        mine = [t.question for t in shared if t.question.startswith(f"t{k} ")]
        assert mine == [f"t{k} q{i}" for i in range(per_thread)]  # per-thread order kept
    assert [t.id for t in store.load("shared", user="u").recent] == [t.id for t in shared[-5:]]
