"""The answer path end to end with a scripted model that writes its prompt back.

The real pipeline (real embeddings, real index, real operators) with the scripted backend
in place of llama.cpp: it isolates what the model says, so the test can make it say the
worst thing a small model does — its own prompt, the retry instruction — and check that
none of it reaches the answer; and count the requests, so the language gate is visible.
"""

from __future__ import annotations

import re
import shutil
from typing import Any

import pytest

from studio_nb import create_studio_pipeline
from studio_nb.operators import prompt_builder as pb

pytestmark = pytest.mark.slow

ENV_DOC = "guides/packages/sage-kernel/api/environments.md"


def _fragments() -> list[str]:
    """Six-word runs of every instruction text the pipeline can put in a prompt."""
    texts = [*pb.TEMPLATES, *pb.INSTRUCTIONS.values()]
    out = []
    for t in texts:
        words = re.findall(r"\w+", re.sub(r"\{\w+\}", " ", t).lower())
        out += [" ".join(words[i : i + 6]) for i in range(len(words) - 5)]
    return out


def _echoes(text: str) -> list[str]:
    flat = " ".join(re.findall(r"\w+", text.lower()))
    return [f for f in _fragments() if f in flat] + re.findall(r"(?im)^\s*(?:question|evidence|sources)\s*:", text)


@pytest.fixture(scope="module")
def echo_pipe(tmp_path_factory, shared_data) -> Any:
    root = tmp_path_factory.mktemp("echo")
    target = root / "docs" / ENV_DOC
    target.parent.mkdir(parents=True)
    shutil.copy(shared_data / "sage_docs" / ENV_DOC, target)
    pipe = create_studio_pipeline(data_dir=str(root / "data"), bundled_docs=False,
                                  llm={"backend": "scripted", "echo": "prompt", "replies": []})
    pipe.warm_up()
    pipe.ingest(root / "docs", "sage_docs", progress=False)
    yield pipe
    pipe.close()


def _client(pipe: Any) -> Any:
    return pipe.resources.llm


@pytest.mark.parametrize(
    "question, domains",
    [
        ("How do I create a LocalEnvironment and submit a pipeline?", None),  # evidence found: grounded synthesis
        # a general request searched in the docs (a domain was picked): nothing found, then the model's own answer
        ("Tell me a joke about penguins, please", ["sage_docs"]),
    ],
)
def test_no_prompt_or_retry_text_reaches_the_answer(echo_pipe: Any, question: str, domains: Any) -> None:
    client = _client(echo_pipe)
    before = len(client.requests)
    resp = echo_pipe.ask(question, session_id=f"echo-{len(question)}", domains=domains).wait().response
    assert len(client.requests) == before + 1, "the model was not asked: nothing was tested"
    echoed = "\n".join(m["content"] for m in client.requests[-1])
    assert _echoes(echoed)  # the model did write its instructions back
    assert not _echoes(resp.text), (resp.text, _echoes(resp.text))
    assert not _echoes(resp.synthesis)
    assert not any(_echoes(d.text) for d in resp.dropped)  # dropped sentences are shown by front ends too
    assert resp.attempts <= 1  # no automatic retry by default


def test_a_general_question_with_nothing_found_says_so_then_labels_the_model_answer() -> None:
    """The order the user reads: nothing found (and where), then the model's answer as its own."""
    from studio_nb.citation import Citation
    from studio_nb.messages import ContextEnrichedMessage, RoutedMessage, Source, StreamChunk, UserMessage
    from studio_nb.messages import Evidence, LLMRequest
    from studio_nb.operators import GroundingGuardOp
    from studio_nb.operators.grounding import MODEL_LABEL

    user = UserMessage("Tell me a joke about penguins", session_id="s", request_id="r")
    routed = RoutedMessage(user, "GENERAL_CHAT", ("sage_docs",), 0.9)
    ctx = ContextEnrichedMessage(routed, documents=(Source(Citation("a.md", 1, 2, "", "sage_docs"), 0.1, "Unrelated text."),),
                                 evidence=Evidence((), "Nothing in the selected knowledge (sage_docs) answers this."))
    req = LLMRequest(ctx, ({"role": "system", "content": "Chat in a friendly way, in one or two sentences."},), 48, 0.0, 0)
    chunk = StreamChunk("", "s", "r", is_final=True, text="Why do penguins waddle? To keep warm.", request=req)
    from types import SimpleNamespace

    from studio_nb.services.evidence.grounding import GroundingChecker

    op = GroundingGuardOp(mode="grounded", max_attempts=1)
    op.bind(SimpleNamespace(grounding=GroundingChecker()))
    resp = op(chunk)
    first, rest = resp.text.split("\n\n", 1)
    assert first == "Nothing in the selected knowledge (sage_docs) answers this."
    assert rest.startswith(MODEL_LABEL + "Why do penguins waddle?")


def test_nothing_found_is_said_plainly_with_the_domains_searched(echo_pipe: Any) -> None:
    resp = echo_pipe.ask("What is the capital of Peru?", session_id="echo-none").wait().response
    assert not resp.evidence
    assert resp.text.startswith("Nothing in the selected knowledge (")
    assert "sage_docs" in resp.text.split("\n")[0]


def test_a_chinese_question_gets_the_evidence_and_no_synthesis(echo_pipe: Any) -> None:
    client = _client(echo_pipe)
    before = len(client.requests)
    resp = echo_pipe.ask("LocalEnvironment 怎么提交一个 pipeline？", session_id="echo-zh").wait().response
    assert resp.evidence and not resp.synthesis
    assert len(client.requests) == before  # the model was not asked to write Chinese


def test_an_english_question_over_chinese_evidence_gets_the_evidence_without_asking_the_model(echo_pipe: Any) -> None:
    """The synthesis must restate one passage in the asker's language; from passages that are
    mostly Chinese an English sentence cannot, so the model is not asked (seconds saved)."""
    client = _client(echo_pipe)
    before = len(client.requests)
    resp = echo_pipe.ask("How long does _wait_for_completion wait before it calls stop()?",
                         session_id="echo-zh-evidence").wait().response
    assert resp.evidence and "最长等待 5 分钟" in resp.text
    assert len(client.requests) == before and not resp.synthesis


def test_which_evidence_the_model_may_restate() -> None:
    from studio_nb.citation import Citation
    from studio_nb.messages import Evidence, EvidencePiece
    from studio_nb.operators.evidence import EvidenceOp

    def evidence(*texts: str) -> Evidence:
        return Evidence(tuple(EvidencePiece(n, t, Citation("a.md", n, n)) for n, t in enumerate(texts, 1)))

    zh = evidence("当 `autostop=True` 时，`_wait_for_completion()` 会轮询任务状态，最长等待 5 分钟，然后尝试调用 `stop()`。")
    en = evidence("With autostop=True, submit() waits for the JobManager to finish the job.")
    op = EvidenceOp()
    assert op.can_synthesize("How long does autostop wait?", en)
    assert not op.can_synthesize("How long does autostop wait?", zh)
    assert not op.can_synthesize("autostop 最长等待多久？", zh)  # the model writes English only (by default)
    both = EvidenceOp(synthesis_languages=("en", "zh"))
    assert both.can_synthesize("autostop 最长等待多久？", zh) and not both.can_synthesize("autostop 最长等待多久？", en)
    # only what the model reads counts: a Chinese passage after 450 characters of English does not
    assert op.can_synthesize("How long does autostop wait?", evidence(en.pieces[0].text * 7, zh.pieces[0].text))
