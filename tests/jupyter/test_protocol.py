"""The frame rules as a table (no server): what each bad frame is told, what good frames become."""

from __future__ import annotations

import json

import pytest

from jupyter_ext.protocol import (
    ChatFrame, ClearFrame, FrameError, ReplayFrame, StopFrame, done_frame, parse_client_frame, step_frame,
    stopped_frame,
)
from studio_nb.kernel.events import StepEvent

LIMIT = 1000

GOOD = [
    ({"type": "chat", "message": "hi", "session_id": "s1", "request_id": "r1"}, ChatFrame("hi", "s1", "r1")),
    ({"type": "stop", "request_id": "r1"}, StopFrame("r1")),
    ({"type": "clear", "session_id": "s1"}, ClearFrame("s1")),
    ({"type": "replay", "session_id": "s1", "request_id": "r2", "from": "prompt_builder"},
     ReplayFrame("s1", "r2", "prompt_builder")),
    ({"type": "replay", "session_id": "s1", "request_id": "r3", "of": "abc", "params": {"knowledge_rag": {"k": 1}}},
     ReplayFrame("s1", "r3", None, "abc", {"knowledge_rag": {"k": 1}})),
]

BAD = [
    ("{", "bad_json", None),
    ("null", "bad_frame", None),
    ('"text"', "bad_frame", None),
    (json.dumps({"type": "chat", "session_id": "s"}), "bad_frame", None),
    (json.dumps({"type": "chat", "message": "  ", "session_id": "s"}), "bad_frame", None),
    (json.dumps({"type": "chat", "message": "hi"}), "bad_frame", None),
    (json.dumps({"type": "chat", "message": "hi", "session_id": 3}), "bad_frame", None),
    (json.dumps({"type": "chat", "message": "hi", "session_id": "s", "request_id": "r 1"}), "bad_frame", "r 1"),
    (json.dumps({"message": "hi", "session_id": "x" * 129}), "bad_frame", None),
    (json.dumps({"type": "nope", "request_id": "r9"}), "unknown_type", "r9"),
    (json.dumps({"type": 7}), "unknown_type", None),
    (json.dumps({"type": "stop"}), "bad_frame", None),
    (json.dumps({"type": "clear", "session_id": ""}), "bad_frame", None),
    (json.dumps({"message": "é" * 600, "session_id": "s"}), "too_large", None),  # 1200 bytes in UTF-8
    (json.dumps({"type": "replay", "session_id": "s", "request_id": "r4"}), "bad_frame", "r4"),  # from what?
    (json.dumps({"type": "replay", "session_id": "s", "from": "a b"}), "bad_frame", None),
    (json.dumps({"type": "replay", "session_id": "s", "from": "x", "params": {"x": 3}}), "bad_frame", None),
    (json.dumps({"type": "replay", "from": "evidence"}), "bad_frame", None),
    (b"{}", "binary_frame", None),
]


@pytest.mark.parametrize("frame,expected", GOOD)
def test_good_frames(frame, expected):
    assert parse_client_frame(json.dumps(frame), max_bytes=LIMIT) == expected


def test_a_frame_without_type_is_chat_and_gets_a_request_id():
    a = parse_client_frame(json.dumps({"message": "hi", "session_id": "s"}), max_bytes=LIMIT)
    b = parse_client_frame(json.dumps({"message": "hi", "session_id": "s"}), max_bytes=LIMIT)
    assert isinstance(a, ChatFrame) and a.request_id and a.request_id != b.request_id


@pytest.mark.parametrize("raw,code,rid", BAD)
def test_bad_frames(raw, code, rid):
    with pytest.raises(FrameError) as err:
        parse_client_frame(raw, max_bytes=LIMIT)
    assert err.value.code == code
    assert err.value.request_id == rid
    assert err.value.message


def test_server_frames():
    start = step_frame(StepEvent("llm_inference", "running", "r1"), "r1")
    assert start == {"type": "step", "operator": "llm_inference", "status": "running", "request_id": "r1"}
    end = step_frame(StepEvent("llm_inference", "completed", "r1", duration_ms=12.34567), "r1")
    assert end["duration_ms"] == 12.346
    done = done_frame({"intent": "GENERAL_CHAT", "sources": [], "usage": {"completion_tokens": 3},
                       "timings": {"a": 1.0}, "text": "hi"}, "r1")
    assert done["type"] == "done" and done["request_id"] == "r1" and done["text"] == "hi"
    assert stopped_frame("r1", {"a": 1.234})["stopped"] is True
