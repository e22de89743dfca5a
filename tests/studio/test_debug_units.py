"""The debugging API's bookkeeping, without models: bounded turn log, breakpoints, snapshots,
variant validation, and the JSON form of messages."""

from __future__ import annotations

import json

import pytest

from studio_nb.debug.log import TurnLog
from studio_nb.debug.trace import TurnTrace
from studio_nb.errors import ConfigError, WiringError
from studio_nb.kernel.trace import TraceRecord
from studio_nb.citation import Citation
from studio_nb.messages import (ContextEnrichedMessage, Evidence, EvidencePiece, LLMRequest, Response, RoutedMessage,
                                Source, UserMessage, from_json, rebind, to_json)
from studio_nb.kernel.testing import Identity  # noqa: F401  (registers an Any -> Any operator)
from studio_nb.operators import PromptBuilderOp
from studio_nb.turn import Turn


def _context() -> ContextEnrichedMessage:
    user = UserMessage("what is a ParallelGroup?", session_id="s", request_id="r1", created_at=1.0)
    routed = RoutedMessage(user, "KNOWLEDGE_QUERY", ("studio_nb_docs",), 0.9, routing=({"stage": "x", "n": [1, 2]},))
    docs = (Source(Citation("kernel.md", 1, 4, "Group", "d"), 0.5, "A ParallelGroup runs branches."),)
    ev = Evidence((EvidencePiece(1, "A ParallelGroup runs branches.", Citation("kernel.md", 1, 1, domain="d")),), "", "r1", "s")
    return ContextEnrichedMessage(routed, documents=docs, evidence=ev, degraded=(("tool_executor", "x"),))


def test_messages_have_a_faithful_json_form():
    ctx = _context()
    req = LLMRequest(ctx, ({"role": "user", "content": "hi"},), render_options={"mode": "grounded"})
    back = from_json(json.loads(json.dumps(to_json(req))))
    assert back == req and isinstance(back.context.documents, tuple)
    assert back.context.routed.routing == ({"stage": "x", "n": [1, 2]},)
    moved = rebind(req, "r2")
    assert moved.context.routed.original.request_id == "r2" and moved.context.evidence.request_id == "r2"
    assert moved.context.documents is req.context.documents  # untouched parts are shared, not copied


def _turn(rid: str) -> Turn:
    trace = TurnTrace([TraceRecord("evidence", _context(), Evidence(), "completed")])
    return Turn.restored("q", session_id="s", request_id=rid, user="local", trace=trace)


def test_the_turn_log_keeps_recent_traces_live_and_forgets_old_turns():
    log = TurnLog(live=2, kept=3)
    turns = [_turn(f"r{i}") for i in range(7)]
    for t in turns:
        log.add(t)
    assert len(log) == 5 and log.get("r0") is None and log.get("r1") is None
    assert [t.trace.compacted for t in turns[2:]] == [True, True, True, False, False]
    old = turns[2].trace.last("evidence")  # compacted: rebuilt from JSON when read
    assert old.input == turns[6].trace.last("evidence").input
    assert log.last("s", "local") is turns[6] and log.get("r6", user="bob") is None


class TerseBuilder(PromptBuilderOp):
    """A registered operator with the prompt builder's sockets (a variant a session may pick)."""


def test_breakpoints_snapshots_and_variants_are_checked():
    from studio_nb.studio import create_studio_pipeline

    pipe = create_studio_pipeline(data_dir="/nonexistent-not-created", bundled_docs=False)  # nothing loads
    with pytest.raises(WiringError, match="no node named 'tokn_budget'.*token_budget"):
        pipe.breakpoint("tokn_budget")
    pipe.breakpoint("token_budget", session_id="a")
    pipe.breakpoint("token_budget", session_id="b")
    pipe.breakpoint("grounding")
    assert pipe.breakpoints == {"token_budget": ["a", "b"], "grounding": None}
    assert pipe.debug.breakpoints_for("a") == {"token_budget", "grounding"} and pipe.debug.breakpoints_for("c") == {"grounding"}
    pipe.breakpoint("token_budget", enabled=False, session_id="a")
    assert pipe.breakpoints["token_budget"] == ["b"]
    pipe.clear_breakpoints()
    assert pipe.breakpoints == {}
    with pytest.raises(ConfigError, match="not a paused-turn snapshot"):
        pipe.resume({"format": "something else"})
    with pytest.raises(ConfigError, match="no snapshot file"):
        pipe.resume("/nonexistent/snap.json")
    with pytest.raises(ConfigError, match="intent_mode must be one of keyword, embedding, hybrid, got 'llm'"):
        pipe.variants.set_setting("intent_mode", "llm", session_id="a", user="u")  # no intent_llm configured
    assert "TerseBuilder" in pipe.pipeline.alternatives("prompt_builder")
    assert "TerseBuilder" not in pipe.pipeline.alternatives("grounding")  # other sockets
    assert "Identity" not in pipe.pipeline.alternatives("prompt_builder")  # Any -> Any fits vacuously
    described = pipe.session_variants("a", "u")["operators"]["prompt_builder"]
    assert described["current"] == "PromptBuilderOp" and "TerseBuilder" in described["options"]
    op = pipe.variants.set_operator("prompt_builder", "TerseBuilder", session_id="a", user="u")
    assert op["operators"]["prompt_builder"]["current"] == "TerseBuilder"
    built = pipe.variants.overrides("a", "u")["prompt_builder"]
    assert type(built) is TerseBuilder and built.policy == pipe["prompt_builder"].policy
    assert built.config == pipe["prompt_builder"].config  # the node's settings (max_tokens...) carry over
    assert pipe.variants.overrides("b", "u") == {}  # another session: nothing stands in


def test_a_response_reads_back_from_a_compacted_trace():
    resp = Response("GENERAL_CHAT", "s", "r1", evidence=Evidence(), synthesis="text", timings={"a": 1.5})
    trace = TurnTrace([TraceRecord("stream_output", resp, resp, "completed")])
    trace.compact()
    assert trace.response == resp and trace.compacted
