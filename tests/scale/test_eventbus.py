"""EventBusSink and follow() against a real redis-server child process."""

from __future__ import annotations

import threading

import pytest

from studio_nb.cli import main as cli
from studio_nb.services.eventbus import EventBusSink, follow, recent
from studio_nb.kernel import Pipeline, StepEvent
from studio_nb.kernel.testing import Exclaim, Tokens, Upper
from studio_nb.messages import TextDelta

pytestmark = pytest.mark.redis


def _pipeline() -> Pipeline:
    p = Pipeline("bus")
    up = Upper(name="up")
    p.add_source(up)
    p.connect(up, Exclaim(name="ex"))
    p.connect("ex", Tokens(name="words"))
    return p


def test_a_follower_sees_every_step_of_a_turn_in_order(redis_url):
    import uuid

    stream = f"t:steps:{uuid.uuid4().hex[:8]}"  # a fresh stream, followed from its start: no race
    sink = EventBusSink(redis_url, stream=stream)
    p = _pipeline()
    p.subscribe(sink)
    received: list[dict] = []
    ready, done = threading.Event(), threading.Event()

    def consume() -> None:
        it = follow(redis_url, stream, "0", block_ms=200, stop=done.is_set)
        ready.set()
        for ev in it:
            received.append(ev)
            if ev.get("kind") == "text" and ev["content"] == "END":
                done.set()

    t = threading.Thread(target=consume, daemon=True)
    t.start()
    ready.wait(5)
    items = list(p.stream("hello bus", events=True))
    rid = next(i.request_id for i in items if isinstance(i, StepEvent))
    for word in [i for i in items if isinstance(i, str)]:  # the words (the last one is also the result)
        sink(TextDelta(word, rid, "s"))
    sink.publish_text("END", rid)
    assert sink.flush(10)
    t.join(20)
    assert not t.is_alive(), f"the follower never saw the end marker; got {received}"
    steps = [(e["operator"], e["status"]) for e in received if e["kind"] == "step"]
    assert steps == [
        ("up", "running"), ("up", "completed"),
        ("ex", "running"), ("ex", "completed"),
        ("words", "running"), ("words", "completed"),
    ]
    assert {e["request_id"] for e in received if e["kind"] == "step"} == {rid}
    assert [e["content"] for e in received if e["kind"] == "text"] == ["HELLO", "BUS!", "END"]
    assert all("duration_ms" in e for e in received if e["kind"] == "step" and e["status"] == "completed")
    assert sink.published == 9 and sink.dropped == sink.failed == 0
    sink.close()


def test_stream_is_trimmed_to_about_maxlen(redis_url):
    import redis

    sink = EventBusSink(redis_url, stream="t:trim", maxlen=100)
    for i in range(2000):
        sink(StepEvent(f"op{i}", "completed", "r"))
    assert sink.flush(20)
    length = redis.Redis.from_url(redis_url).xlen("t:trim")
    assert 100 <= length < 500  # approximate trimming keeps a little more than maxlen, never all
    assert sink.published + sink.dropped == 2000 and sink.failed == 0
    sink.close()


def test_a_full_queue_drops_and_counts_instead_of_growing(redis_url):
    # nothing listens on port 1: every send fails, so the queue fills up
    sink = EventBusSink("redis://127.0.0.1:1/0", stream="t:down", queue_size=10, batch_size=5)
    for i in range(1000):
        sink(StepEvent("op", "running", f"r{i}"))
    assert sink.pending <= 10
    assert sink.dropped >= 1000 - 10 - 5
    sink.close(timeout=1)
    assert sink.published == 0
    assert sink.last_error and "Connection" in sink.last_error


def test_events_command_prints_recent_events(redis_url, capsys):
    sink = EventBusSink(redis_url, stream="t:cli")
    sink(StepEvent("llm_inference", "completed", "abcdef123456", duration_ms=12.5, pipeline="studio"))
    sink(StepEvent("guardrail", "failed", "abcdef123456", error="boom", pipeline="studio"))
    assert sink.flush(10)
    capsys.readouterr()
    assert cli(["events", "--url", redis_url, "--stream", "t:cli", "--count", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "abcdef12 studio/llm_inference completed 12.5 ms" in lines[0]
    assert "studio/guardrail failed (boom)" in lines[1]
    assert [e["operator"] for e in recent(redis_url, "t:cli", 1)] == ["guardrail"]
    sink.close()


def test_events_command_reports_an_unreachable_redis(capsys):
    assert cli(["events", "--url", "redis://127.0.0.1:1/0", "--stream", "x"]) == 1
    assert "cannot read events from redis://127.0.0.1:1/0" in capsys.readouterr().err


def test_telemetry_setting_publishes_a_studio_turn_to_the_event_bus(redis_url, tmp_path, capsys):
    """``telemetry: {event_bus: ...}`` alone makes every step of a turn readable by `studio-nb events`."""
    import yaml

    from studio_nb.studio import create_studio_pipeline

    config = tmp_path / "studio.yaml"
    config.write_text(yaml.safe_dump({"telemetry": {"event_bus": {"url": redis_url, "stream": "t:studio"}}}))
    pipe = create_studio_pipeline(str(config), data_dir=str(tmp_path / "data"), bundled_docs=False)
    assert pipe.telemetry.enabled == ["event_bus"]
    turn = pipe.ask("compute 6*7", session_id="bus")
    assert "42" in turn.text()
    pipe.close()  # flushes the sink
    capsys.readouterr()
    assert cli(["--config", str(config), "events", "--count", "50", "--json"]) == 0
    import json

    steps = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    ops = {(e["operator"], e["status"]) for e in steps if e["request_id"] == turn.request_id}
    assert {("intent_router", "completed"), ("evidence", "completed"), ("memory_saver", "completed")} <= ops


@pytest.mark.slow
def test_events_follow_prints_the_steps_of_a_turn_made_through_the_server(redis_url, tmp_path):
    """The server extension publishes what ``telemetry: {event_bus}`` in its config file says,
    and ``studio-nb --config F events --follow`` (started before the turn) prints its steps."""
    import asyncio
    import json
    import os
    import queue
    import subprocess
    import sys

    import yaml
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    from tests.jupyter.conftest import Client
    from tests.jupyter.server_proc import JupyterServerProcess

    config = tmp_path / "studio.yaml"
    config.write_text(yaml.safe_dump({"telemetry": {"event_bus": {"url": redis_url, "stream": "t:server"}}}))
    follower = subprocess.Popen(
        [sys.executable, "-c", "from studio_nb.cli import main; raise SystemExit(main())",
         "--config", str(config), "events", "--follow", "--json"],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout], daemon=True).start()
    srv = JupyterServerProcess(tmp_path, tmp_path / "data", extra={"config_file": str(config)}).start()
    try:
        async def chat() -> list[dict]:
            req = HTTPRequest(f"ws://127.0.0.1:{srv.port}/studio/api/chat",
                              headers={"Authorization": f"token {srv.token}"})
            client = Client(await websocket_connect(req))
            await client.send({"message": "compute 6*7", "session_id": "bus", "request_id": "bus-1"})
            return await client.until_done("bus-1", timeout=600)

        frames = asyncio.run(chat())
        assert frames[-1]["type"] == "done" and "42" in json.dumps(frames[-1])
        seen: list[dict] = []
        while not any(e["operator"] == "memory_saver" and e["status"] == "completed" for e in seen):
            seen.append(json.loads(lines.get(timeout=60)))  # queue.Empty: the step never arrived
        assert follower.poll() is None  # still following
        request_ids = {e["request_id"] for e in seen if e["operator"] == "memory_saver"}
        ops = {(e["operator"], e["status"]) for e in seen if e["request_id"] in request_ids}
        assert {("intent_router", "completed"), ("tool_executor", "completed"), ("memory_saver", "completed")} <= ops
    finally:
        srv.stop()
        follower.terminate()
        follower.wait(30)
