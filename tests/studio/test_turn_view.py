"""The one answer model: the Turn folds every part into its one live view, the Response's
text is computed from its parts, front ends only render, and the debugger sits beside
the pipeline. Logic, not generation: the model is scripted (the retrieval, evidence and
grounding around it are real)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from studio_nb import present
from studio_nb.messages import Response, TextDelta, compose_answer
from studio_nb.view import View

REPLY = "A ParallelGroup runs its branches concurrently."


@pytest.fixture
def pipe(scripted_studio: Any) -> Any:
    return scripted_studio(REPLY, answer_mode="generative")


def test_the_turn_keeps_one_live_view_that_every_rendering_reads(pipe: Any) -> None:
    turn = pipe.ask("hello, tell me about a ParallelGroup", session_id="view")
    resp = turn.response
    parts = turn.parts
    assert turn.view.response is resp and turn.view.text == REPLY
    assert turn.view.deltas == sum(isinstance(p, TextDelta) for p in parts) > 1
    folded = View.of(parts, question=turn.question)  # what a front end would have folded itself
    assert (folded.text, folded.evidence, folded.response) == (turn.view.text, turn.view.evidence, resp)
    assert turn.partial_text() == REPLY and turn.evidence is turn.view.evidence
    assert present.to_json(turn)["text"] == resp.text == turn.text()
    assert present.plain(turn).startswith(resp.text) and REPLY in present.markdown(turn)
    assert set(present.timings(turn)) >= {"user_input", "llm_inference"}


def test_response_text_is_computed_from_its_parts(pipe: Any) -> None:
    resp = pipe.chat("hello, tell me about a ParallelGroup", session_id="text")
    assert "text" not in {f.name for f in fields(Response)}  # nothing to choose between
    assert resp.text == compose_answer(resp.evidence, resp.synthesis, resp.note, resp.question)
    assert resp.to_dict()["text"] == resp.text


def test_a_stopped_turn_says_so_in_its_view(pipe: Any) -> None:
    pipe.breakpoint("prompt_builder", session_id="stop")
    try:
        turn = pipe.ask("hello, tell me about a ParallelGroup", session_id="stop")
        assert turn.paused_at == "prompt_builder" and turn.is_paused and turn.state == "paused at prompt_builder"
        turn.stop()
        turn.wait(30)
        assert turn.view.note == "stopped" and not turn.answered and turn.state == "stopped"
        assert "(stopped)" in present.plain(turn)
    finally:
        pipe.clear_breakpoints()


def test_the_debugger_is_composed_beside_the_pipeline(pipe: Any) -> None:
    from studio_nb.debug.api import Debugger

    assert isinstance(pipe.debug, Debugger) and not isinstance(pipe, Debugger)
    pipe.breakpoint("token_budget", session_id="a")  # the short name reaches pipe.debug
    assert pipe.debug.breakpoints == pipe.breakpoints == {"token_budget": ["a"]}
    pipe.clear_breakpoints()
    assert pipe.debug.breakpoints == {}


def test_a_synthesis_that_is_a_code_block_opens_its_fence_on_its_own_line():
    from studio_nb import present
    from studio_nb.citation import Citation
    from studio_nb.messages import Evidence, EvidencePiece, Response, compose_answer

    evidence = Evidence((EvidencePiece(1, "env.submit(autostop=True)", Citation("env.md", 3, 3, domain="sage_docs")),))
    code = "```python\nenv.submit(autostop=True)\n```"
    assert "In short:\n```python\n" in compose_answer(evidence, code, question="How do I submit?")
    resp = Response("KNOWLEDGE_QUERY", "s", "r", question="How do I submit?", evidence=evidence, synthesis=code)
    assert "**Answer**\n```python\n" in present.markdown(resp)
