"""Issue #11 crash isolation, end to end: a real ``jupyter server`` child process whose
model runs in a model process of its own; that process is killed with SIGKILL while it
streams an answer to a real WebSocket client.

The turn that was answering ends with an ``error`` frame (``model_crashed``), the Jupyter
server keeps its PID and keeps serving, the next turn is answered by a fresh model process,
and the turn acknowledged before the crash is still stored.
"""

from __future__ import annotations

import json
import os
import signal

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from studio_nb.services.inference import model_processes
from studio_nb.services.inference.model_process import wait_exit
from tests.jupyter.conftest import Client
from tests.jupyter.server_proc import JupyterServerProcess

pytestmark = pytest.mark.slow

#: ~256 tokens (max_tokens below): the kill lands while the answer streams, with room to spare
LONG = "Count from 1 to 300, separated by commas."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    work = tmp_path_factory.mktemp("model-crash")
    srv = JupyterServerProcess(work, work / "data", max_tokens=256).start()
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def auth(srv: JupyterServerProcess) -> dict[str, str]:
    return {"Authorization": f"token {srv.token}"}


async def connect(srv: JupyterServerProcess) -> Client:
    return Client(await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{srv.port}/studio/api/chat", headers=auth(srv))))


async def rest(srv: JupyterServerProcess, path: str) -> dict:
    r = await AsyncHTTPClient().fetch(f"{srv.url}studio/api/{path}", headers=auth(srv), request_timeout=300)
    return json.loads(r.body)


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("PPid:")).split()[1])


async def test_killing_the_model_process_mid_answer_ends_that_turn_only(server):
    srv = server
    data_dir = str(srv.workdir / "data")
    server_pid = srv.pid
    [model] = model_processes(data_dir)  # started by the server's warm-up
    model_pid = model["pid"]
    assert model_pid != server_pid and parent_of(model_pid) == server_pid

    c = await connect(srv)
    await c.send({"message": "What is SAGE?", "session_id": "crash", "request_id": "before"})
    before = await c.until_done("before", timeout=600)
    assert before[-1]["type"] == "done"

    await c.send({"message": LONG, "session_id": "crash", "request_id": "cut"})
    while True:  # the kill lands while the model streams this answer
        frame = await c.recv(timeout=600)
        if frame.get("request_id") != "cut":
            c.pending.append(frame)
            continue
        assert frame["type"] not in ("done", "error"), frame
        if frame["type"] == "text":
            break
    os.kill(model_pid, signal.SIGKILL)
    frames = await c.until_done("cut", timeout=600)
    error = frames[-1]
    assert error["type"] == "error" and error["code"] == "model_crashed", error
    assert f"pid {model_pid}" in error["message"] and "SIGKILL" in error["message"]
    assert "next question restarts it" in error["message"]

    # the Jupyter server did not go down with its model
    assert srv.proc.poll() is None and srv.pid == server_pid
    assert (await rest(srv, "health"))["runtime"]["status"] == "ready"

    await c.send({"message": LONG, "session_id": "crash", "request_id": "after"})
    after = await c.until_done("after", timeout=600)
    assert after[-1]["type"] == "done" and sum(f["type"] == "text" for f in after) > 10  # the model answered
    [restarted] = model_processes(data_dir)
    assert restarted["pid"] != model_pid and parent_of(restarted["pid"]) == server_pid

    turns = {t["request_id"]: t["answer"] for t in (await rest(srv, "sessions/crash"))["turns"]}
    assert turns["before"] == before[-1]["text"]  # acknowledged before the crash: kept
    assert turns.get("cut") is None  # the crashed turn is not stored half-written
    print(f"\nmodel process {model_pid} killed mid-answer: error frame {error['code']!r}; Jupyter server pid "
          f"{server_pid} unchanged; next turn answered by model process {restarted['pid']}")


def test_stopping_the_server_stops_the_model_process_it_no_longer_shares(server):
    [model] = model_processes(str(server.workdir / "data"))
    server.stop()  # SIGTERM: the extension closes its pipeline, which stops the unused process
    assert wait_exit(model["pid"], 120)[0]
    assert model_processes(str(server.workdir / "data")) == []
