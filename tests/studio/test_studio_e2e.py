"""The whole Studio pipeline on the embedded defaults: real model, real retrieval, real memory."""

from __future__ import annotations

import itertools

import pytest

from studio_nb.errors import StudioError, UnknownSessionError
from studio_nb.kernel import StepEvent
from studio_nb.messages import Evidence, Response, TextDelta

pytestmark = pytest.mark.slow
OPERATORS = [
    "user_input", "intent_router", "memory_loader", "knowledge_rag", "context_join", "evidence",
    "prompt_builder", "token_budget", "llm_inference", "grounding", "memory_saver",
]
_ids = itertools.count()


def sid(name: str) -> str:
    return f"{name}-{next(_ids)}"


def test_a_turn_streams_steps_evidence_text_then_the_response(studio):
    turn = studio.ask("What is a ParallelGroup in studio-nb?", session_id=sid("e2e"))
    items = list(turn)
    assert list(turn) == items  # iterating again replays the buffer; nothing runs twice
    kinds = [type(i).__name__ for i in items]
    assert kinds[-1] == "Response" and "TextDelta" in kinds and "StepEvent" in kinds
    first_text, evidence_at = kinds.index("TextDelta"), kinds.index("Evidence")
    assert evidence_at < first_text  # evidence first, before the model writes anything
    steps_before = {(e.operator, e.status) for e in items[:first_text] if isinstance(e, StepEvent)}
    assert ("prompt_builder", "completed") in steps_before and ("llm_inference", "running") in steps_before
    evidence: Evidence = items[evidence_at]
    assert evidence.pieces and "ParallelGroup" in " ".join(evidence.texts)
    deltas = "".join(i.content for i in items if isinstance(i, TextDelta))
    resp: Response = items[-1]
    assert resp.evidence == evidence and resp.text.startswith("[1] ")
    assert len(deltas) > 3 and all(s.split(" [")[0] in deltas for s in resp.synthesis.split(". ") if s)
    assert turn.text() == resp.text and turn.first_content_s is not None
    assert resp.intent == "KNOWLEDGE_QUERY"
    assert set(OPERATORS) <= set(resp.timings), resp.timings
    assert resp.usage.completion_tokens > 0 and resp.usage.prompt_tokens > 50
    assert resp.sources and any(s.domain == "studio_nb_docs" for s in resp.sources)


def test_chinese_question_is_answered_from_sage_docs(studio):
    resp = studio.chat("SAGE 的 LocalEnvironment 和 RemoteEnvironment 有什么区别？", session_id=sid("zh"))
    assert resp.intent == "KNOWLEDGE_QUERY"
    assert resp.sources and resp.sources[0].domain == "sage_docs"
    assert any("environment" in s.path.lower() for s in resp.sources)
    assert resp.text.strip()


def test_calculator_tool_result_is_recorded(studio):
    resp = studio.chat("compute 17*23", session_id=sid("calc"))
    assert resp.intent == "SYSTEM_OPERATION"
    calls = [t for t in resp.tool_calls if t.name == "calculator"]
    assert calls and calls[0].result == 391 and calls[0].error is None
    assert not resp.sources  # no retrieval for tool requests


def test_general_chat_skips_retrieval(studio):
    events = [e for e in studio.stream("hello, how are you today?", session_id=sid("chat"), events=True)]
    statuses = {(e.operator, e.status) for e in events if isinstance(e, StepEvent)}
    assert ("knowledge_rag", "skipped") in statuses
    assert ("knowledge_rag", "running") not in statuses
    assert events[-1].intent == "GENERAL_CHAT"


def test_turn_is_committed_before_the_response_and_recalled_next_turn(studio):
    session = sid("mem")
    first = studio.chat("compute 6*7", session_id=session)
    assert first.turn_id is not None
    history = studio.memory.history(session)
    assert [t.id for t in history] == [first.turn_id] and history[0].question == "compute 6*7"
    studio.chat("and what is 2+2?", session_id=session)
    loaded = studio["memory_loader"].last[-1].output
    assert [t.question for t in loaded.recent] == ["compute 6*7"]


def test_stop_cancels_generation_mid_stream(studio):
    client = studio["llm_inference"].client
    got = 0
    stream = studio.stream("Write a long essay about dataflow pipelines.", session_id=sid("stop"), events=False)
    for item in stream:
        if isinstance(item, TextDelta) and item.content:
            got += 1
            if got == 3:
                break
    stream.close()
    # the next turn can only start once the cancelled generation released the model
    studio.chat("compute 1+1", session_id=sid("after-stop"))
    stopped = [r for r in studio["llm_inference"].last if r.error is not None]
    assert stopped, "the cancelled generation should be recorded as interrupted"
    assert client.last_generation is not None


def test_operators_are_live_objects_callable_in_a_cell(studio):
    from studio_nb.messages import UserMessage

    router = studio["intent_router"]
    routed = router(UserMessage("compute 17*23"))
    assert routed.intent == "SYSTEM_OPERATION"
    sources = studio["knowledge_rag"](studio["intent_router"](UserMessage("What is a ParallelGroup?")))
    assert sources and all(s.ref for s in sources)


def test_bad_input_gets_clear_errors(studio):
    with pytest.raises(StudioError) as empty:
        studio.chat("   ", session_id=sid("bad"))
    assert empty.value.code == "empty_message"
    with pytest.raises(StudioError) as huge:
        studio.chat("x" * 9000, session_id=sid("bad"))
    assert huge.value.code == "too_long" and "8000" in str(huge.value)


def test_sessions_belong_to_their_user(studio):
    """A session id is a name within its user's namespace: bob's turn in alice's id is his own."""
    session = sid("owned")
    studio.chat("compute 2*3", session_id=session, user="alice")
    studio.chat("compute 2*4", session_id=session, user="bob")
    assert [t.question for t in studio.memory.history(session, user="alice")] == ["compute 2*3"]
    assert [t.question for t in studio.memory.history(session, user="bob")] == ["compute 2*4"]
    with pytest.raises(UnknownSessionError):
        studio.memory.history(session, user="mallory")


def test_missing_model_is_a_clear_error(tmp_path):
    from studio_nb.errors import ModelNotFoundError
    from studio_nb.studio import create_studio_pipeline

    pipe = create_studio_pipeline(
        data_dir=str(tmp_path), llm={"backend": "llama_cpp", "model_path": str(tmp_path / "nope.gguf")}
    )
    with pytest.raises(ModelNotFoundError) as info:
        pipe["llm_inference"].warm_up()
    assert "nope.gguf" in str(info.value) and "fix" in str(info.value)


def test_pipelines_on_one_data_dir_share_one_model_process(studio):
    """DESIGN §6: N pipelines of one user on one data dir load the model once."""
    from studio_nb.services.inference import ManagedModelClient, model_processes
    from studio_nb.services.inference.model_process import wait_exit
    from studio_nb.studio import create_studio_pipeline

    mine = studio["llm_inference"].client
    assert isinstance(mine, ManagedModelClient)  # the default: the model runs in a process of its own
    other = create_studio_pipeline(data_dir=studio.config["data_dir"], max_tokens=32)
    try:
        other.resources.llm.warm_up()  # just the model: no embeddings, no index
        assert other.resources.llm.pid == mine.pid
        assert [p["pid"] for p in model_processes(studio.config["data_dir"])] == [mine.pid]
    finally:
        other.close()
    assert not wait_exit(mine.pid, 0)[0]  # still in use by `studio`: closing `other` left it running
    assert studio.chat("compute 2+2", session_id=sid("shared")).text
