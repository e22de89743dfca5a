"""The Studio WebSocket protocol (DESIGN §5): client frames checked, server frames built.

Everything a client sends passes through :func:`parse_client_frame`, which returns one of
three small frame objects or raises :class:`FrameError` carrying the ``error`` frame's
``code``. Keeping the rules here (no tornado, no pipeline) lets them be tested as a table
and keeps the handler about sockets and tasks only.

Client frames::

    {"type": "chat", "message": str, "session_id": str, "request_id"?: str}
        (a frame without "type" is a chat frame)
    {"type": "stop", "request_id": str}
    {"type": "clear", "session_id": str}
    {"type": "replay", "session_id": str, "request_id"?: str, "from"?: str, "of"?: str,
     "params"?: {operator: {param: value}}}
        (run the session's last turn, or turn "of", again from operator "from" with the
        session's variants and "params", reusing everything upstream; it streams like a
        chat and is not saved to the session's memory)

Server frames::

    {"type": "step", "operator", "status", "duration_ms"?, "request_id"}
    {"type": "evidence", "request_id", "pieces": [{"n", "text", "kind", "score", <citation>}], "note"}
        (<citation>: "ref", "domain", "path", "start_line", "end_line", "heading", "unit" —
        ``studio_nb.citation.Citation.to_dict``; the sources of "done" carry the same keys)
        (the cited passages or tool results, before any generated text; at most one)
    {"type": "text", "content", "request_id", "restart"?}   (the synthesis as it is generated)
    {"type": "done", "request_id", **present.to_json(turn.view)}
        (the turn's JSON, what ``studio-nb chat --json`` prints: "evidence", "synthesis",
        "dropped": [{"text", "reason"}], "note", "sources", "intent", "usage", "timings",
        "mode", "text" (the whole answer as one string) ...; the page renders its parts)
    {"type": "error", "code", "message", "request_id"?}
    {"type": "cleared", "session_id", "turns"}      (the answer to "clear")

A replay's ``done`` frame also carries ``"replay_of"`` (the replayed request id) and
``"diff"`` (``studio_nb.diff(original, replay).to_dict()``: evidence, prompt, answer, timings).

Every request ends with exactly one ``done`` or ``error`` frame; a request stopped by the
client ends with ``done`` carrying ``"stopped": true``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Union

from studio_nb.kernel.context import new_request_id

#: request and session ids: printable, no spaces or quotes, bounded (they end up in logs and URLs)
_ID = re.compile(r"^[A-Za-z0-9._:@+\-]{1,128}$")
MAX_ID_LEN = 128


class FrameError(ValueError):
    """A client frame the server cannot act on; ``code`` goes into the error frame."""

    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class ChatFrame:
    message: str
    session_id: str
    request_id: str


@dataclass(frozen=True)
class ReplayFrame:
    session_id: str
    request_id: str
    from_: str | None = None
    of: str | None = None
    params: dict[str, dict[str, Any]] | None = None


@dataclass(frozen=True)
class StopFrame:
    request_id: str


@dataclass(frozen=True)
class ClearFrame:
    session_id: str


ClientFrame = Union[ChatFrame, ReplayFrame, StopFrame, ClearFrame]
#: operator names in a replay frame (they are node names of the pipeline YAML)
_NODE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def _id_field(frame: dict[str, Any], key: str, *, required: bool, rid: str | None) -> str | None:
    if key not in frame or frame[key] is None:
        if required:
            raise FrameError("bad_frame", f"missing field {key!r}; add \"{key}\": \"<id>\" to the frame", rid)
        return None
    value = frame[key]
    if not isinstance(value, str) or not _ID.match(value):
        raise FrameError(
            "bad_frame",
            f"field {key!r} must be 1-{MAX_ID_LEN} characters from letters, digits and ._:@+- (got {value!r:.60})",
            rid,
        )
    return value


def parse_client_frame(raw: str | bytes, *, max_bytes: int) -> ClientFrame:
    """Check one raw WebSocket message and return the frame it holds.

    Raises FrameError with code ``binary_frame``, ``too_large``, ``bad_json``,
    ``bad_frame`` (not an object, a missing or mistyped field) or ``unknown_type``.
    """
    if isinstance(raw, (bytes, bytearray)):
        raise FrameError("binary_frame", "binary frames are not supported; send JSON text frames")
    size = len(raw.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise FrameError("too_large", f"frame is {size} bytes; the limit is {max_bytes} bytes (send a shorter message)")
    try:
        frame = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise FrameError("bad_json", f"frame is not valid JSON ({exc}); send one JSON object per frame") from None
    if not isinstance(frame, dict):
        raise FrameError("bad_frame", f"frame must be a JSON object, not {type(frame).__name__}")
    # the request id is read first so that errors about the rest of the frame can carry it
    rid = frame.get("request_id") if isinstance(frame.get("request_id"), str) else None
    kind = frame.get("type", "chat")
    if kind == "chat":
        message = frame.get("message")
        if message is None:
            raise FrameError("bad_frame", "missing field 'message' in a chat frame", rid)
        if not isinstance(message, str) or not message.strip():
            raise FrameError("bad_frame", "field 'message' must be a non-empty string", rid)
        session_id = _id_field(frame, "session_id", required=True, rid=rid)
        request_id = _id_field(frame, "request_id", required=False, rid=rid) or new_request_id()
        return ChatFrame(message=message, session_id=session_id, request_id=request_id)
    if kind == "replay":
        return _replay_frame(frame, rid)
    if kind == "stop":
        return StopFrame(request_id=_id_field(frame, "request_id", required=True, rid=rid))
    if kind == "clear":
        return ClearFrame(session_id=_id_field(frame, "session_id", required=True, rid=rid))
    raise FrameError("unknown_type", f"unknown frame type {kind!r:.40}; use 'chat', 'replay', 'stop' or 'clear'",
                     rid)


def _replay_frame(frame: dict[str, Any], rid: str | None) -> ReplayFrame:
    start = frame.get("from")
    if start is not None and (not isinstance(start, str) or not _NODE.match(start)):
        raise FrameError("bad_frame", "field 'from' must be an operator name (letters, digits, _.-)", rid)
    params = frame.get("params")
    if params is not None:
        if not isinstance(params, dict) or not all(
            isinstance(k, str) and _NODE.match(k) and isinstance(v, dict) and all(isinstance(p, str) for p in v)
            for k, v in params.items()
        ):
            raise FrameError("bad_frame", "field 'params' must map operator names to {param: value} objects", rid)
    if start is None and not params:
        raise FrameError("bad_frame", "a replay needs 'from' (the operator to run again from) or 'params'", rid)
    return ReplayFrame(
        session_id=_id_field(frame, "session_id", required=True, rid=rid),
        request_id=_id_field(frame, "request_id", required=False, rid=rid) or new_request_id(),
        from_=start, of=_id_field(frame, "of", required=False, rid=rid), params=params,
    )


# ---------------------------------------------------------------- server frames
def error_frame(code: str, message: str, request_id: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if request_id is not None:
        frame["request_id"] = request_id
    return frame


def step_frame(event: Any, request_id: str) -> dict[str, Any]:
    """A kernel StepEvent as a ``step`` frame (duration only on end events)."""
    frame: dict[str, Any] = {
        "type": "step",
        "operator": event.operator,
        "status": event.status,
        "request_id": request_id,
    }
    if event.duration_ms is not None:
        frame["duration_ms"] = round(event.duration_ms, 3)
    if getattr(event, "error", None):
        frame["error"] = event.error
    return frame


def evidence_frame(evidence: Any, request_id: str) -> dict[str, Any]:
    """The Evidence part as an ``evidence`` frame (sent before any ``text`` frame)."""
    return {"type": "evidence", "request_id": request_id, **evidence.to_dict()}


def text_frame(delta: Any, request_id: str) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "text", "content": delta.content, "request_id": request_id}
    if getattr(delta, "restart", False):
        frame["restart"] = True
    return frame


def done_frame(turn_json: dict[str, Any], request_id: str) -> dict[str, Any]:
    """The final frame of a turn: the turn's JSON (``present.to_json(turn.view)``) as it is."""
    return {**turn_json, "type": "done", "request_id": request_id}


def stopped_frame(request_id: str, timings: dict[str, float]) -> dict[str, Any]:
    """The final frame of a turn the client stopped: what ran, nothing more."""
    return {
        "type": "done",
        "request_id": request_id,
        "stopped": True,
        "intent": None,
        "sources": [],
        "usage": None,
        "timings": {k: round(v, 2) for k, v in timings.items()},
    }
