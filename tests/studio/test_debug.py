"""See a turn and change it (issue #13) on the real Studio pipeline: real model, real retrieval.

The default graph has all three shapes a replay or a breakpoint must get right: the context
ParallelGroup, the type-routed edge (evidence -> memory_saver when no model is needed), and
the grounding -> prompt_builder feedback edge. Operators' own run histories (``op.last``)
prove what ran and what was reused; nothing is timed.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio_nb import diff
from studio_nb.errors import ConfigError, TurnStateError, WiringError
from studio_nb.messages import LLMRequest, Regenerate, StreamChunk
from studio_nb.operators import GroundingGuardOp, PromptBuilderOp
from tests.conftest import MAX_TOKENS

pytestmark = pytest.mark.slow
QUESTION = "what is a ParallelGroup?"
UPSTREAM = ["user_input", "intent_router", "context", "memory_loader", "knowledge_rag", "tool_executor",
            "context_join", "evidence"]
_ids = itertools.count()


def sid(name: str) -> str:
    return f"dbg-{name}-{next(_ids)}"


@pytest.fixture(scope="module")
def asked(studio):
    """One answered turn the tests replay (each replay is its own request)."""
    turn = studio.ask(QUESTION, session_id=sid("asked"))
    assert turn.text()
    return turn


def runs(studio, name: str) -> object:
    """The operator's newest run record: a new one appears exactly when it ran again (``op.last``
    keeps a bounded number of runs, and the run's one pipeline has served many tests before)."""
    last = studio[name].last
    return last[-1] if last else None


class OneSentence(PromptBuilderOp):
    """A prompt builder that also asks for a single sentence."""

    def process(self, msg):
        req = super().process(msg)
        last = {**req.messages[-1], "content": req.messages[-1]["content"] + "\nAnswer in one short sentence."}
        return dataclasses.replace(req, messages=(*req.messages[:-1], last))


class RetryOnce(GroundingGuardOp):
    """Sends the first answer back to the prompt builder (the feedback edge), then checks as usual."""

    def process(self, msg: StreamChunk):
        if msg.request.attempt == 0:
            return Regenerate(msg.request, "asked to try again", msg.text)
        return super().process(msg)


# ---------------------------------------------------------------- the trace
def test_a_turn_keeps_its_trace_with_inputs_outputs_and_the_raw_text(studio, asked):
    trace = asked.trace
    names = trace.operators
    assert names[:3] == ["user_input", "intent_router", "context"]
    assert {"memory_loader", "knowledge_rag", "tool_executor", "context_join", "llm_inference", "grounding",
            "memory_saver", "stream_output"} <= set(names)
    for rec in trace:
        assert rec.status in ("completed", "skipped") and not rec.reused and rec.attempt == 0
        assert rec.duration_ms >= 0
    assert trace.last("tool_executor").status == "skipped" and trace.last("tool_executor").note == "no tool applies"
    llm = trace.last("llm_inference")
    assert isinstance(llm.input, LLMRequest) and isinstance(llm.output, StreamChunk)
    assert trace.generated == llm.output.text and llm.output.text.strip()
    assert QUESTION in trace.prompt[-1]["content"]
    assert trace.evidence == asked.evidence and trace.response == asked.response
    html = trace._repr_html_()
    assert html.count("<details") == len(trace) and "generated text (before the grounding check)" in html


def test_the_trace_is_saved_with_the_turn_and_readable_after_a_restart(studio, asked, studio_dir):
    from studio_nb.studio import create_studio_pipeline

    fresh = create_studio_pipeline(data_dir=str(studio_dir / "data"), max_tokens=MAX_TOKENS, workspace=str(studio_dir))
    try:  # a new pipeline object: nothing in its memory, only the database
        past = fresh.past_turn(session_id=asked.session_id)
        assert past is not None and past.request_id == asked.request_id and past.done
        assert past.trace.operators == asked.trace.operators
        assert past.trace.generated == asked.trace.generated
        assert past.trace.last("evidence").output == asked.trace.last("evidence").output  # faithful messages
        assert past.text() == asked.text()
    finally:
        fresh.memory.close()


# ---------------------------------------------------------------- replay
def test_must_show_replay_from_the_prompt_builder(studio, asked):
    names = [r.operator for r in asked.trace]
    saved = len(studio.memory.history(asked.session_id))
    before = {n: runs(studio, n) for n in ("intent_router", "knowledge_rag", "evidence", "llm_inference")}
    t2 = studio.replay(asked, from_="prompt_builder", params={"prompt_builder": {"max_doc_chars": 200}})
    assert t2.text()
    assert all(r.reused for r in t2.trace if names.index(r.operator) < names.index("prompt_builder"))
    assert [r.operator for r in t2.trace if not r.reused] == [
        "prompt_builder", "token_budget", "llm_inference", "grounding", "memory_saver", "stream_output"]
    after = {n: runs(studio, n) for n in before}
    assert [n for n in before if after[n] is not before[n]] == ["llm_inference"]
    assert t2.trace.last("memory_saver").status == "skipped" and t2.response.turn_id is None
    assert len(studio.memory.history(asked.session_id)) == saved  # a replay is not a second turn
    assert t2.replay_of == asked.request_id and t2.response.request_id == t2.request_id
    assert t2.evidence == dataclasses.replace(asked.evidence, request_id=t2.request_id)  # shown again, first
    text = str(diff(asked, t2))
    assert text.startswith(f"Turn diff {asked.request_id} → {t2.request_id} (replay of {asked.request_id}")
    assert "Evidence: same" in text and "intent_router" in text and "reused" in text
    assert studio["prompt_builder"].max_doc_chars == 700  # the shared pipeline did not change


def test_replace_an_operator_for_one_replay_only(studio, asked):
    t2 = studio.replay(asked, replace={"prompt_builder": OneSentence()})
    d = diff(asked, t2)
    assert not d.prompt["same"] and d.prompt["b"].endswith("Answer in one short sentence.")
    assert d.evidence["same"] and all(t["b_reused"] for t in d.timings if t["operator"] in UPSTREAM)
    assert "one short sentence" in d._repr_markdown_() and "<table" in d._repr_html_()
    assert type(studio["prompt_builder"]) is PromptBuilderOp
    other = studio.ask(QUESTION, session_id=sid("other"))  # another session: the original builder
    other.text()
    assert "one short sentence" not in other.trace.prompt[-1]["content"]


def test_replay_across_the_group_and_the_type_routed_edge(studio, asked):
    mem, tools = runs(studio, "memory_loader"), runs(studio, "tool_executor")
    t2 = studio.replay(asked, from_="knowledge_rag", params={"knowledge_rag": {"k": 1}})
    t2.text()
    reused = {r.operator: r.reused for r in t2.trace}
    assert reused["memory_loader"] and reused["tool_executor"] and not reused["knowledge_rag"]
    assert not reused["context_join"] and not reused["context"] and not reused["evidence"]
    assert runs(studio, "memory_loader") is mem and runs(studio, "tool_executor") is tools
    assert len(t2.trace.last("knowledge_rag").output) == 1 < len(asked.trace.last("knowledge_rag").output)
    # extractive evidence answers by itself: the type-routed edge skips the model entirely
    t3 = studio.replay(asked, params={"evidence": {"mode": "extractive"}})
    assert t3.response.mode == "extractive" and t3.response.synthesis == ""
    assert "prompt_builder" not in t3.trace.operators and "llm_inference" not in t3.trace.operators
    assert [r.operator for r in t3.trace][-2:] == ["memory_saver", "stream_output"]
    assert str(diff(asked, t3)).splitlines()[2] == "Prompt: changed"


def test_replay_through_the_feedback_edge(studio, asked):
    t2 = studio.replay(asked, replace={"grounding": RetryOnce()})
    assert t2.text() and t2.response.attempts == 2
    pb = t2.trace.runs("prompt_builder")
    assert [(r.visit, r.reused) for r in pb] == [(0, True), (1, False)]  # the loop's second run is real
    assert isinstance(pb[1].input, Regenerate)
    assert [(r.visit, r.reused) for r in t2.trace.runs("llm_inference")] == [(0, True), (1, False)]
    assert [r.reused for r in t2.trace.runs("grounding")] == [False, False]
    # replaying that replay from the second prompt: the first loop is reused as recorded
    t3 = studio.replay(t2, from_=("prompt_builder", 1))
    t3.text()
    assert [r.reused for r in t3.trace.runs("llm_inference")] == [True, False]


def test_replay_errors_say_what_to_do(studio, asked):
    with pytest.raises(WiringError, match="no such operator; operators: context, context_join"):
        studio.replay(asked, from_="prompt_bilder")
    with pytest.raises(ConfigError, match="bad params for PromptBuilderOp.*it takes: max_tokens"):
        studio.replay(asked, params={"prompt_builder": {"max_doc_chrs": 1}})
    calc = studio.ask("compute 6*7", session_id=sid("calc"))
    calc.text()
    with pytest.raises(WiringError, match="did not run in this request; operators that ran: user_input"):
        studio.replay(calc, from_="llm_inference")


# ---------------------------------------------------------------- breakpoints
def test_breakpoint_pauses_and_resume_takes_an_edited_message(studio):
    session = sid("bp")
    studio.breakpoint("token_budget", session_id=session)
    try:
        turn = studio.ask(QUESTION, session_id=session)
        assert turn.paused_at == "token_budget" and not turn.done
        pending = turn.pending
        assert isinstance(pending, LLMRequest) and QUESTION in pending.messages[-1]["content"]
        with pytest.raises(ConfigError, match="'token_budget' takes LLMRequest, not str"):
            turn.resume("not a request")
        turn.resume(dataclasses.replace(pending, max_tokens=3))
        assert turn.text() and turn.paused_at is None
        assert turn.trace.last("llm_inference").input.max_tokens == 3
        assert turn.usage.completion_tokens <= 3
        assert turn.trace.last("token_budget").paused_ms > 0
        with pytest.raises(TurnStateError, match="is not paused \\(it is done\\)"):
            turn.resume()
    finally:
        studio.breakpoint("token_budget", enabled=False, session_id=session)
    assert studio.breakpoints == {}


def test_a_paused_turn_holds_no_model_slot(studio):
    waiting, passing = sid("wait"), sid("pass")
    studio.breakpoint("llm_inference", session_id=waiting)
    try:
        paused = studio.ask(QUESTION, session_id=waiting)
        assert paused.paused_at == "llm_inference"
        other = studio.ask("how do I ingest documents with studio-nb?", session_id=passing)
        assert other.text() and other.trace.last("llm_inference").status == "completed"
        assert paused.paused_at == "llm_inference" and not paused.done  # still waiting, and not in the way
        paused.resume()
        assert paused.text()
    finally:
        studio.clear_breakpoints()


RESUME = """
import json, sys
from studio_nb.studio import create_studio_pipeline
pipe = create_studio_pipeline(data_dir=sys.argv[1], max_tokens=int(sys.argv[4]), workspace=sys.argv[2])
turn = pipe.resume(sys.argv[3])
text = turn.text()
print(json.dumps({"text": text, "request_id": turn.request_id, "turn_id": turn.response.turn_id,
                  "runs": [[r.operator, r.reused] for r in turn.trace]}))
"""


def test_snapshot_of_a_paused_turn_resumes_in_another_process(studio, studio_dir, tmp_path):
    session = sid("snap")
    studio.breakpoint("llm_inference", session_id=session)
    try:
        turn = studio.ask(QUESTION, session_id=session)
        assert turn.paused_at == "llm_inference"
        path = tmp_path / "paused.json"
        snap = turn.snapshot(str(path))
        assert json.loads(path.read_text()) == snap and snap["paused_at"] == "llm_inference"
        turn.stop()
        with pytest.raises(TurnStateError, match="not paused \\(it is stopped\\)"):
            turn.resume()
    finally:
        studio.clear_breakpoints()
    out = subprocess.run([sys.executable, "-c", RESUME, str(studio_dir / "data"), str(studio_dir), str(path),
                          str(MAX_TOKENS)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["text"] and result["request_id"] == turn.request_id and result["turn_id"] is not None
    runs_ = dict((op, reused) for op, reused in result["runs"])
    assert all(runs_[n] for n in [*UPSTREAM, "prompt_builder", "token_budget"])
    assert not runs_["llm_inference"] and not runs_["memory_saver"]
    history = studio.memory.history(session)
    assert [t.request_id for t in history] == [turn.request_id]  # saved once, by the process that finished it
    assert studio.past_turn(session_id=session).trace.last("llm_inference").reused is False


# ---------------------------------------------------------------- variants
def test_a_session_variant_changes_that_session_only(studio):
    mine, theirs = sid("variant"), sid("novariant")
    studio.set_session_variant(session_id=mine, user="local", setting="answer_mode", value="extractive")
    try:
        assert studio.ask(QUESTION, session_id=mine).response.mode == "extractive"
        assert studio.ask(QUESTION, session_id=theirs).response.mode == "grounded"
        described = studio.session_variants(mine, "local")
        answer = next(s for s in described["settings"] if s["name"] == "answer_mode")
        assert answer["value"] == "extractive" and answer["nodes"] == ["evidence", "grounding", "prompt_builder"]
        with pytest.raises(ConfigError, match="answer_mode must be one of grounded, extractive, generative"):
            studio.set_session_variant(session_id=mine, user="local", setting="answer_mode", value="poetic")
    finally:
        studio.set_session_variant(session_id=mine, user="local", setting="answer_mode", value=None)
