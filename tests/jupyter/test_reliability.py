"""Issue #11 reliability suite: a real ``jupyter server`` child process (custom identity
provider, 18 named users, the real pipeline and models) that is fuzzed, loaded by 16 users
at once and killed with SIGKILL mid-turn (its model process, killed mid-answer instead:
test_model_process.py).

The server binds port 0 itself and reports the port (tests/jupyter/serve.py). Nothing here
waits on a clock to order events: the first chat waits for the warm-up server-side, and a
sentinel frame (an error for a request nobody started) proves a socket holds nothing else.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import sqlite3

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from studio_nb.services.inference import model_processes
from studio_nb.services.inference.model_process import wait_exit
from tests.jupyter.conftest import Client
from tests.jupyter.identity import token
from tests.jupyter.server_proc import JupyterServerProcess

pytestmark = pytest.mark.slow

FUZZ_FRAMES = 2400
RSS_GROWTH_LIMIT = 50 * 1024 * 1024
USERS = [f"user{i:02d}" for i in range(16)]
FRAME_LIMIT = 16 * 1024  # StudioExtension.max_message_size for this server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module; the kill -9 test (last) restarts it on the same data dir."""
    work = tmp_path_factory.mktemp("reliability")
    holder = {"work": work}

    def start() -> JupyterServerProcess:
        srv = JupyterServerProcess(work, work / "data", max_tokens=16,
                                   extra={"max_message_size": FRAME_LIMIT, "max_requests_total": 32},
                                   identity_provider="tests.jupyter.identity.ManyUsers").start()
        holder["srv"] = srv
        return srv

    holder["start"] = start
    start()
    try:
        yield holder
    finally:
        holder["srv"].stop()


async def connect(srv: JupyterServerProcess, user: str) -> Client:
    req = HTTPRequest(f"ws://127.0.0.1:{srv.port}/studio/api/chat", headers=token(user))
    return Client(await websocket_connect(req))


async def rest(srv: JupyterServerProcess, user: str, path: str) -> dict:
    r = await AsyncHTTPClient().fetch(f"{srv.url}studio/api/{path}", headers=token(user), request_timeout=300)
    return json.loads(r.body)


async def chat(c: Client, message: str, session: str, rid: str) -> list[dict]:
    await c.send({"message": message, "session_id": session, "request_id": rid})
    return await c.until_done(rid, timeout=600)


async def nothing_else_queued(c: Client, tag: str) -> None:
    """Send a frame whose only answer is an error naming ``tag``; it must be the next frame."""
    await c.send({"type": "stop", "request_id": f"sentinel-{tag}"})
    frame = await c.recv()
    assert frame == {"type": "error", "code": "unknown_request", "request_id": f"sentinel-{tag}",
                     "message": frame.get("message")}, f"an unexpected frame was queued: {frame}"


# ---------------------------------------------------------------- fuzzing
def bad_frames(n: int, seed: int = 11) -> list[tuple[str | bytes, str]]:
    """``n`` frames the server must refuse, each with the error code it must answer."""
    rnd = random.Random(seed)
    junk = "{}[]\":,\\ \x00é中😀abc123"

    def rid() -> str:
        return f"f{rnd.randrange(10**9)}"

    makers = [
        lambda: ("".join(rnd.choice(junk) for _ in range(rnd.randrange(1, 200))) + "{", "bad_json"),
        lambda: (json.dumps(rnd.choice([[], [1, 2], "str", 3.5, None, True])), "bad_frame"),
        lambda: (json.dumps({"type": "chat", "session_id": "s", "request_id": rid()}), "bad_frame"),
        lambda: (json.dumps({"type": "chat", "message": "hi", "request_id": rid()}), "bad_frame"),
        lambda: (json.dumps({"message": rnd.choice([5, [], {}, "   ", None]), "session_id": "s"}), "bad_frame"),
        lambda: (json.dumps({"message": "x", "session_id": rnd.choice(["a b", "", "x" * 200, "é", 7, "a/b"])}),
                 "bad_frame"),
        lambda: (json.dumps({"message": "x", "session_id": "s", "request_id": rnd.choice(["sp ace", "", 3])}),
                 "bad_frame"),
        lambda: (json.dumps({"type": rnd.choice(["dance", "", "CHAT", 5, None, "clear "]), "session_id": "s"}),
                 "unknown_type"),
        lambda: (json.dumps({"type": "stop"}), "bad_frame"),
        lambda: (json.dumps({"type": "stop", "request_id": rid()}), "unknown_request"),
        lambda: (json.dumps({"type": "clear", "session_id": rnd.choice(["", "a b", 1])}), "bad_frame"),
        lambda: (json.dumps({"type": "clear", "session_id": f"never-{rid()}"}), "unknown_session"),
        lambda: ("[" * rnd.randrange(2000, 10000), "bad_json"),  # recursion bombs
        lambda: (json.dumps({"message": "y" * (FRAME_LIMIT + rnd.randrange(10, 30000)), "session_id": "s"}),
                 "too_large"),
        lambda: (bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 64))), "binary_frame"),
    ]
    return [rnd.choice(makers)() for _ in range(n)]


async def test_fuzzed_frames_each_get_an_error_and_the_server_stays_flat(server):
    srv = server["srv"]
    c = await connect(srv, "bob")
    assert (await chat(c, "What is SAGE?", "fuzz", "warm"))[-1]["type"] == "done"  # models loaded, caches warm
    rss_before = srv.rss_bytes()
    frames = bad_frames(FUZZ_FRAMES)
    answered: collections.Counter = collections.Counter()
    for start in range(0, len(frames), 100):  # 100 in flight, then their 100 answers (in any order)
        batch = frames[start:start + 100]
        for raw, _ in batch:
            await c.send(raw)
        got = [await c.recv(timeout=120) for _ in batch]
        assert all(f["type"] == "error" and f["message"] for f in got), [f for f in got if f["type"] != "error"]
        assert collections.Counter(f["code"] for f in got) == collections.Counter(code for _, code in batch)
        answered.update(f["code"] for f in got)
    assert sum(answered.values()) == len(frames) >= 2000
    await nothing_else_queued(c, "fuzz")
    assert (await chat(c, "still there?", "fuzz", "after"))[-1]["type"] == "done"
    rss_after = srv.rss_bytes()
    assert srv.proc.poll() is None, "the server died"
    print(f"\nfuzz: {len(frames)} bad frames, {sum(answered.values())} error frames {dict(answered)}; "
          f"server RSS {rss_before / 2**20:.1f} MiB -> {rss_after / 2**20:.1f} MiB "
          f"({(rss_after - rss_before) / 2**20:+.1f} MiB)")
    assert rss_after - rss_before < RSS_GROWTH_LIMIT


# ---------------------------------------------------------------- many users
async def test_sixteen_users_at_once_each_get_exactly_their_one_answer(server):
    srv = server["srv"]
    clients = await asyncio.gather(*(connect(srv, u) for u in USERS))
    for user, c in zip(USERS, clients):
        await c.send({"message": f"What is a pipeline operator? ({user})", "session_id": f"many-{user}",
                      "request_id": f"req-{user}"})
    results = await asyncio.gather(*(c.until_done(f"req-{u}", timeout=900) for u, c in zip(USERS, clients)))
    wrong = 0
    for user, c, frames in zip(USERS, clients, results):
        assert [f["type"] for f in frames].count("done") == 1 and frames[-1]["type"] == "done", (user, frames[-1])
        assert frames[-1]["session_id"] == f"many-{user}"
        wrong += len(c.pending) + sum(f.get("request_id") != f"req-{user}" for f in frames)
        await nothing_else_queued(c, user)  # no frame of anyone else's is waiting behind the done
    assert wrong == 0
    for user in USERS[:4]:  # and each sees only their own session
        sessions = [s["session_id"] for s in (await rest(srv, user, "sessions"))["sessions"]]
        assert sessions == [f"many-{user}"], (user, sessions)
    print(f"\n16 users: {len(results)} done frames, {sum(len(r) for r in results)} frames, {wrong} on a wrong socket")
    for c in clients:
        c.ws.close()


# ---------------------------------------------------------------- kill -9 (keep this test last)
async def test_kill_9_mid_turn_loses_no_acknowledged_turn(server):
    srv = server["srv"]
    alice, bob = await asyncio.gather(connect(srv, "alice"), connect(srv, "bob"))
    acked = {}
    for i in range(4):
        done = (await chat(alice, f"Tell me about operator number {i}.", "durable", f"ack{i}"))[-1]
        assert done["type"] == "done"
        acked[f"ack{i}"] = done["text"]
    await alice.send({"message": "Write a long essay about dataflow pipelines.", "session_id": "durable",
                      "request_id": "cut"})
    await bob.send({"message": "And what is a ParallelGroup?", "session_id": "bob-durable", "request_id": "cut-b"})
    while True:  # the kill lands while alice's answer streams
        frame = await alice.recv(timeout=600)
        if frame.get("request_id") == "cut" and frame["type"] == "text":
            break
        alice.pending.append(frame)
    [model] = model_processes(str(srv.workdir / "data"))
    srv.kill9()
    assert not wait_exit(model["pid"], 0)[0], "the model process must outlive the server it served"
    db = srv.workdir / "data" / "memory.sqlite3"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    srv = server["start"]()  # the same data dir, a fresh process
    alice = await connect(srv, "alice")
    assert (await chat(alice, "Are you back?", "after-kill", "back"))[-1]["type"] == "done"
    turns = (await rest(srv, "alice", "sessions/durable"))["turns"]
    stored = {t["request_id"]: t["answer"] for t in turns}
    lost = [rid for rid in acked if stored.get(rid) != acked[rid]]
    cut = [t for t in turns if t["request_id"] == "cut"]
    assert all(t["answer"] for t in cut)  # the interrupted turn is either whole or absent
    reused = [p["pid"] for p in model_processes(str(srv.workdir / "data"))] == [model["pid"]]
    print(f"\nkill -9: {len(acked)} acknowledged turns, {len(lost)} lost, interrupted turn "
          f"{'saved whole' if cut else 'absent'}; server back on port {srv.port}; model process "
          f"{model['pid']} {'reused' if reused else 'replaced'}")
    assert lost == []
