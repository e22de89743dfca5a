"""Operators in isolation: junk verdicts, the budget guard's trimming order, the feedback
loop (with a scripted LLM that isolates the retry logic), the context join, the evidence
operator's direct answers and the grounding guard's sentence checks.

Operators get their services through ``bind(resources)``; here a ``SimpleNamespace``
hands them exactly the real or scripted part each test isolates."""

from __future__ import annotations

from types import SimpleNamespace
from typing import AsyncIterator

import pytest

from studio_nb.errors import BudgetExceededError
from studio_nb.kernel import Branches, Operator, Pipeline
from studio_nb.citation import Citation
from studio_nb.messages import (
    ContextEnrichedMessage,
    LLMRequest,
    MemoryContext,
    Regenerate,
    Response,
    RoutedMessage,
    Source,
    StreamChunk,
    ToolResult,
    UserMessage,
)
from studio_nb.operators import ContextJoinOp, GroundingGuardOp, PromptBuilderOp, StreamOutputOp, TokenBudgetGuardOp
from studio_nb.services.evidence.loops import find_loop, junk_reason


def routed(text: str = "What is a ParallelGroup?", intent: str = "KNOWLEDGE_QUERY") -> RoutedMessage:
    return RoutedMessage(UserMessage(text, session_id="t"), intent, ("sage_docs",), 0.9)


def doc(i: int, score: float, chars: int = 600) -> Source:
    return Source(Citation(f"doc{i}.md", 1, 10, f"Heading {i}", "sage_docs"), score, ("word%d " % i) * (chars // 6))


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "empty answer"),
        ("   \n", "empty answer"),
        ("!!!! ???? .... ---- ****", "degenerate answer (mostly symbols)"),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "degenerate answer (a character repeated)"),
        ("The pipeline runs. The pipeline runs. The pipeline runs. The pipeline runs.", "looping answer"),
        ("并行组同时运行多个分支。并行组同时运行多个分支。并行组同时运行多个分支。", "looping answer"),
        ("A ParallelGroup runs independent branches concurrently and joins them [1].", None),
        ("ParallelGroup 会并行运行多个分支，然后合并结果。", None),
    ],
)
def test_junk_verdicts(text, reason):
    assert junk_reason(text) == reason


def test_find_loop_points_at_the_second_repetition():
    text = "Intro sentence here. one two three four. one two three four. one two three four."
    cut = find_loop(text)
    assert cut is not None and text[:cut].rstrip().endswith("one two three four.")


def test_context_join_picks_results_by_type_and_records_failures():
    r = routed()
    from studio_nb.services.memory import StoredTurn

    mem = MemoryContext(recent=(StoredTurn.new("t", "q", "a", intent="X"),))
    docs = (doc(1, 0.5),)
    tools = (ToolResult("calculator", {"expression": "1+1"}, 2),)
    out = ContextJoinOp()(
        Branches(r, results={"m": mem, "k": docs, "t": tools}, errors={"x": "boom"}, skipped={"y": "why"})
    )
    assert out.memory is mem and out.documents == docs and out.tool_results == tools
    assert out.degraded == (("x", "boom"),)


def test_prompt_builder_cites_numbered_sources_and_keeps_a_stable_prefix():
    pb = PromptBuilderOp(max_tokens=64)
    ctx1 = ContextEnrichedMessage(routed("first question"), documents=(doc(1, 0.9), doc(2, 0.5)))
    ctx2 = ContextEnrichedMessage(routed("second question"), documents=(doc(3, 0.7),))
    a, b = pb(ctx1), pb(ctx2)
    assert a.messages[0] == b.messages[0]  # same system prompt for the same intent: KV cache reuse
    user = a.messages[-1]["content"]
    assert "[1] doc1.md § Heading 1" in user and "[2] doc2.md" in user and user.endswith("Question: first question")
    retry = pb(Regenerate(a, "empty answer", ""))
    assert retry.attempt == 1 and retry.temperature > 0 and "empty answer" in retry.messages[-1]["content"]


@pytest.fixture(scope="module")
def guard():
    from studio_nb.services.inference import create_inference_client

    op = TokenBudgetGuardOp(n_ctx=600)
    op.bind(SimpleNamespace(llm=create_inference_client({})))  # the real model's tokenizer
    op.ensure_warm()
    yield op
    op.client.close()


def test_budget_guard_trims_lowest_scored_sources_first(guard):
    pb = PromptBuilderOp(max_tokens=100)
    ctx = ContextEnrichedMessage(routed(), documents=(doc(1, 0.9), doc(2, 0.1), doc(3, 0.5)))
    req = pb(ctx)
    assert guard.client.count_chat_tokens(list(req.messages)) > 500
    out = guard(req)
    assert out.prompt_tokens <= 600 - 100
    assert out.trimmed[0].startswith("source doc2.md")  # score 0.1 went first
    kept = [d.path for d in out.context.documents]
    assert "doc2.md" not in kept and (not kept or kept[0] == "doc1.md")


def test_budget_guard_refuses_a_question_that_alone_is_too_long(guard):
    pb = PromptBuilderOp(max_tokens=100)
    req = pb(ContextEnrichedMessage(routed("explain " * 700)))
    with pytest.raises(BudgetExceededError) as info:
        guard(req)
    assert info.value.code == "too_long" and "shorten the question" in str(info.value)


class ScriptedLLM(Operator):
    """Isolates the guardrail's retry loop from the model: answers from a list."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers

    async def process(self, msg: LLMRequest) -> AsyncIterator[StreamChunk]:
        text = self.answers[min(msg.attempt, len(self.answers) - 1)]
        for word in text.split(" "):
            yield StreamChunk(word + " ", "t", "r", text=text, attempt=msg.attempt)
        yield StreamChunk("", "t", "r", is_final=True, text=text, attempt=msg.attempt, request=msg)


def _loop_pipeline(answers: list[str], attempts: int = 2, mode: str = "generative", retry_unsupported=True) -> Pipeline:
    from studio_nb.services.evidence.grounding import GroundingChecker

    p = Pipeline("guarded")
    pb, llm, out = PromptBuilderOp(mode=mode), ScriptedLLM(answers), StreamOutputOp()
    gr = GroundingGuardOp(mode=mode, max_attempts=attempts, retry_unsupported=retry_unsupported)
    p.add_source(pb)
    p.connect(pb, llm)
    p.connect(llm, gr)
    p.connect(gr, out)
    p.connect(gr, pb, feedback=True, max_loops=attempts)
    p.use_resources(lambda: SimpleNamespace(grounding=GroundingChecker()))
    return p


def test_guard_sends_a_junk_answer_back_and_accepts_the_retry():
    p = _loop_pipeline(["", "A ParallelGroup runs branches concurrently."])
    resp = p.run(ContextEnrichedMessage(routed()))
    assert isinstance(resp, Response)
    assert resp.attempts == 2 and resp.guardrail is None
    assert resp.text == "A ParallelGroup runs branches concurrently."


def test_guard_gives_up_gracefully_after_its_attempts():
    p = _loop_pipeline(["", "   "], attempts=2)
    resp = p.run(ContextEnrichedMessage(routed()))
    assert resp.attempts == 2 and resp.guardrail == "empty answer"
    assert resp.text.startswith("Sorry")


class LoopingClient:
    """A scripted model client that loops forever; isolates the early loop cut-off."""

    def __init__(self) -> None:
        self.sent = 0
        self.closed = False

    def warm_up(self) -> None:
        pass

    async def astream_chat(self, messages, **options):
        from studio_nb.services.inference import TokenDelta

        try:
            while True:
                self.sent += 1
                yield TokenDelta("the answer is the answer " if self.sent > 2 else "Intro words here. ")
        finally:
            self.closed = True


def test_llm_inference_stops_a_looping_answer_early():
    from studio_nb.operators import LLMInferenceOp

    op = LLMInferenceOp()
    op.bind(SimpleNamespace(llm=LoopingClient()))  # the scripted client replaces the model
    req = PromptBuilderOp()(ContextEnrichedMessage(routed()))
    final = op(req)
    assert final.is_final and final.finish_reason == "loop"
    assert op.client.closed and op.client.sent <= 32
    assert junk_reason(final.text) == "looping answer"


# ---------------------------------------------------------------------- evidence and grounding
PARALLEL_DOC = Source(
    Citation("kernel.md", 40, 44, "ParallelGroup", "studio_nb_docs"),
    0.9,
    "## ParallelGroup\n"
    "A ParallelGroup runs independent branches concurrently on the same input and joins them.\n"
    "The Studio pipeline uses one for memory, retrieval and tools.\n"
    "Timeouts are set per branch with `timeout_ms`, default 30000.\n",
)


def _evidence_op(mode: str = "grounded"):
    from studio_nb.operators import EvidenceOp
    from studio_nb.services.evidence import EvidenceSelector

    op = EvidenceOp(mode=mode)
    op.bind(SimpleNamespace(evidence=EvidenceSelector()))
    return op


def test_evidence_op_streams_cited_passages_then_passes_the_message_on():
    from studio_nb.messages import Evidence

    op = _evidence_op()
    items = list(op.stream(ContextEnrichedMessage(routed(), documents=(PARALLEL_DOC,))))
    evidence, onward = items
    assert isinstance(evidence, Evidence) and isinstance(onward, ContextEnrichedMessage)
    first = evidence.pieces[0]
    assert first.n == 1 and "runs independent branches concurrently" in first.text
    # a passage from the matching line through what follows it, cited by exactly those lines
    assert first.ref == "studio_nb_docs/kernel.md:L41-L43" and "timeout_ms" in first.text
    assert onward.evidence is evidence


@pytest.mark.parametrize("mode", ["grounded", "extractive"])
def test_evidence_op_answers_tool_questions_directly(mode):
    op = _evidence_op(mode)
    ctx = ContextEnrichedMessage(
        routed("compute 17*23", "SYSTEM_OPERATION"), tool_results=(ToolResult("calculator", {"expression": "17*23"}, 391),)
    )
    resp = op(ctx)
    assert isinstance(resp, Response) and resp.text.startswith("[1] 17*23 = 391") and resp.attempts == 0


def test_evidence_op_says_nothing_was_found_instead_of_asking_the_model():
    op = _evidence_op()
    resp = op(ContextEnrichedMessage(routed("what is the capital of Mars?")))
    assert isinstance(resp, Response) and resp.text.startswith("Nothing in the selected knowledge (sage_docs)")
    assert not resp.synthesis


def test_extractive_mode_answers_with_the_evidence_only():
    resp = _evidence_op("extractive")(ContextEnrichedMessage(routed(), documents=(PARALLEL_DOC,)))
    assert isinstance(resp, Response) and resp.mode == "extractive" and resp.usage.completion_tokens == 0
    assert "runs independent branches concurrently" in resp.text and "kernel.md:L41" in resp.text


def _grounded_run(answers: list[str], attempts: int = 2, retry_unsupported: bool = True) -> Response:
    ctx = _evidence_op()(ContextEnrichedMessage(routed(), documents=(PARALLEL_DOC,)))
    return _loop_pipeline(answers, attempts, mode="grounded", retry_unsupported=retry_unsupported).run(ctx)


def test_grounding_keeps_supported_sentences_and_marks_dropped_ones():
    resp = _grounded_run([
        "A ParallelGroup runs independent branches concurrently [1]. "
        "It was invented at Google in 1998 by Larry Page. "
        "I'm the studio-nb, and I'm really cool!"
    ])
    assert resp.synthesis == "A ParallelGroup runs independent branches concurrently [1]."
    reasons = [d.reason for d in resp.dropped]
    assert len(reasons) == 2 and "1998" in reasons[0]
    assert resp.attempts == 1 and resp.text.index("[1] A ParallelGroup") < resp.text.index("In short:")


def test_grounding_asks_again_when_nothing_is_supported_and_lets_the_evidence_stand():
    retried = _grounded_run(["Bananas are yellow fruit.", "A ParallelGroup runs independent branches [1]."])
    assert retried.attempts == 2 and retried.synthesis == "A ParallelGroup runs independent branches [1]."
    hopeless = _grounded_run(["Bananas are yellow fruit.", "Cats sleep a lot."])
    assert hopeless.attempts == 2 and hopeless.synthesis == "" and hopeless.note.startswith("(The model's summary")
    assert "runs independent branches concurrently" in hopeless.text  # the evidence stands alone
    # by default a fluent but unsupported answer is not regenerated (it rarely pays off)
    once = _grounded_run(["Bananas are yellow fruit.", "A ParallelGroup runs independent branches [1]."], retry_unsupported=False)
    assert once.attempts == 1 and once.synthesis == "" and [d.text for d in once.dropped] == ["Bananas are yellow fruit."]


def test_operator_class_names_end_in_op_and_the_old_names_still_load():
    import studio_nb.operators as ops
    from studio_nb.kernel import registry

    assert all(name.endswith("Op") for name in ops.__all__), ops.__all__
    for old, new in (("UserInputSource", ops.UserInputOp), ("ContextJoin", ops.ContextJoinOp),
                     ("StreamOutputSink", ops.StreamOutputOp)):
        assert registry.get(old) is new and registry.registered_name(new) == new.__name__
