"""The chat WebSocket end to end: real server, real pipeline, real model."""

from __future__ import annotations

import asyncio
import json

import pytest

pytestmark = pytest.mark.slow


def kinds(frames):
    return [f["type"] for f in frames]


async def test_chat_streams_steps_text_then_done(studio_ws):
    c = await studio_ws()
    await c.send({"type": "chat", "message": "What is SAGE?", "session_id": "s-stream", "request_id": "r1"})
    frames = await c.until_done("r1")
    assert frames[0]["type"] == "step" and frames[0]["status"] == "running"
    assert frames[-1]["type"] == "done", frames[-1]
    assert "text" in kinds(frames)
    assert all(f["request_id"] == "r1" for f in frames)
    first_text = kinds(frames).index("text")
    assert "step" in kinds(frames)[:first_text]  # the operators before the LLM ran first
    done = frames[-1]
    assert done["intent"] and isinstance(done["sources"], list)
    assert done["usage"]["completion_tokens"] > 0 and done["timings"]
    ran = [f for f in frames if f["type"] == "step" and f["status"] in ("completed", "failed")]
    assert ran and all(f["duration_ms"] >= 0 for f in ran)
    started = {f["operator"] for f in frames if f["type"] == "step" and f["status"] == "running"}
    assert started <= {f["operator"] for f in ran}  # every operator that started also ended
    print("usage", done["usage"], "timings", done["timings"])
    streamed = "".join(f["content"] for f in frames if f["type"] == "text")
    assert streamed.strip()


async def test_frame_without_type_is_chat_and_request_id_is_generated(studio_ws):
    c = await studio_ws()
    await c.send({"message": "hello", "session_id": "s-notype"})
    first = await c.recv()
    rid = first["request_id"]
    assert rid and first["type"] in ("step", "text")
    c.pending.append(first)
    frames = await c.until_done(rid)
    assert frames[-1]["type"] == "done"


async def test_two_sockets_chat_concurrently(studio_ws):
    a, b = await studio_ws(), await studio_ws()
    await a.send({"message": "What is a pipeline?", "session_id": "s-a", "request_id": "ra"})
    await b.send({"message": "What is an operator?", "session_id": "s-b", "request_id": "rb"})
    fa, fb = await asyncio.gather(a.until_done("ra"), b.until_done("rb"))
    assert fa[-1]["type"] == "done" and fb[-1]["type"] == "done"
    assert fa[-1]["session_id"] == "s-a" and fb[-1]["session_id"] == "s-b"


async def test_two_requests_in_flight_on_one_socket(studio_ws):
    c = await studio_ws()
    await c.send({"message": "first question", "session_id": "s-multi-1", "request_id": "m1"})
    await c.send({"message": "second question", "session_id": "s-multi-2", "request_id": "m2"})
    f1, f2 = await c.until_done("m1"), await c.until_done("m2")
    assert f1[-1]["type"] == "done" and f2[-1]["type"] == "done"


LONG = 200


@pytest.mark.parametrize("studio_extra", [{"overrides": {"max_tokens": LONG}}])
async def test_stop_ends_a_long_answer_early(studio_ws, studio_extra):
    c = await studio_ws()
    await c.send({"message": "Write a long essay about dataflow pipelines.", "session_id": "s-stop",
                  "request_id": "long"})
    seen = []
    while True:  # wait for the first tokens, then stop
        f = await c.recv()
        seen.append(f)
        if f["type"] == "text":
            break
    await c.send({"type": "stop", "request_id": "long"})
    c.pending.extend(seen)
    frames = await c.until_done("long")
    done = frames[-1]
    assert done["type"] == "done" and done.get("stopped") is True, done
    n_text = sum(1 for f in frames if f["type"] == "text")
    assert n_text < LONG / 2
    # the socket still works afterwards
    await c.send({"message": "hi", "session_id": "s-stop", "request_id": "after"})
    assert (await c.until_done("after"))[-1]["type"] == "done"


BAD_FRAMES = [
    ("{not json", "bad_json"),
    ("[1, 2]", "bad_frame"),
    (json.dumps({"type": "chat", "session_id": "s"}), "bad_frame"),
    (json.dumps({"type": "chat", "message": "hi"}), "bad_frame"),
    (json.dumps({"type": "chat", "message": 5, "session_id": "s"}), "bad_frame"),
    (json.dumps({"type": "dance", "session_id": "s"}), "unknown_type"),
    (json.dumps({"type": "stop"}), "bad_frame"),
    (json.dumps({"type": "stop", "request_id": "nothing-running"}), "unknown_request"),
    (json.dumps({"type": "clear"}), "bad_frame"),
    (json.dumps({"type": "chat", "message": "x", "session_id": "has space"}), "bad_frame"),
    (b"\x00\x01binary", "binary_frame"),
]


async def test_each_bad_frame_gets_an_error_and_the_socket_stays_usable(studio_ws):
    c = await studio_ws()
    for raw, code in BAD_FRAMES:
        await c.send(raw)
        err = await c.next_error()
        assert err["code"] == code, (raw, err)
        assert err["message"]
    await c.send({"message": "still there?", "session_id": "s-bad", "request_id": "good"})
    assert (await c.until_done("good"))[-1]["type"] == "done"


@pytest.mark.parametrize("studio_extra", [{"max_message_size": 2048}])
async def test_oversized_frame_gets_too_large_and_socket_survives(studio_ws, studio_extra):
    c = await studio_ws()
    await c.send({"message": "x" * 5000, "session_id": "s-big", "request_id": "big"})
    err = await c.next_error()
    assert err["code"] == "too_large" and "2048" in err["message"]
    await c.send({"message": "short", "session_id": "s-big", "request_id": "small"})
    assert (await c.until_done("small"))[-1]["type"] == "done"


async def test_clear_empties_a_session(studio_ws, jp_fetch):
    c = await studio_ws()
    await c.send({"message": "remember me", "session_id": "s-clear", "request_id": "c1"})
    await c.until_done("c1")
    r = await jp_fetch("studio", "api", "sessions", "s-clear")
    assert len(json.loads(r.body)["turns"]) == 1
    await c.send({"type": "clear", "session_id": "s-clear"})
    assert await c.recv() == {"type": "cleared", "session_id": "s-clear", "turns": 1}
    await c.send({"type": "clear", "session_id": "s-clear"})
    assert (await c.next_error())["code"] == "unknown_session"


@pytest.mark.parametrize("studio_extra", [{"max_requests_per_user": 1}])
async def test_per_user_cap_answers_busy(studio_ws, studio_extra):
    c = await studio_ws()
    await c.send({"message": "one", "session_id": "s-cap", "request_id": "cap1"})
    await c.send({"message": "two", "session_id": "s-cap2", "request_id": "cap2"})
    f2 = await c.until_done("cap2")
    assert f2 == [{"type": "error", "code": "busy", "message": f2[0]["message"], "request_id": "cap2"}]
    assert (await c.until_done("cap1"))[-1]["type"] == "done"
