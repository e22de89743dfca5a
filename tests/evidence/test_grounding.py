"""The grounding check, sentence by sentence, as a table of cases (no model involved)."""

from __future__ import annotations

import pytest

from studio_nb.services.evidence.grounding import GroundingChecker, split_sentences

EVIDENCE = [
    "A ParallelGroup runs independent branches concurrently on the same input and joins them.",
    "Timeouts are set per branch with `timeout_ms`, default 30000.",
    "并行组会同时运行多个分支，然后用 ContextJoin 合并结果。",
]
QUESTION = "What is a ParallelGroup?"


@pytest.mark.parametrize(
    "sentence, kept, reason",
    [
        ("A ParallelGroup runs branches concurrently and joins them [1].", True, None),
        ("Each branch has a timeout_ms of 30000 by default [2].", True, None),
        ("Each branch has a timeout of 5000 ms.", False, "'5000'"),  # a number the sources do not have
        ("Use create_parallel_pipeline() to build one.", False, "'create_parallel_pipeline()'"),  # an invented name
        ("It was invented at Google by very clever engineers.", False, "of its words"),
        ("What is a ParallelGroup?", False, "restates the question"),
        ("并行组会同时运行多个分支并合并结果。", True, None),
        ("并行组可以自动扩展到上千台机器。", False, "of its words"),
    ],
)
def test_each_sentence_is_kept_or_dropped_with_a_reason(sentence, kept, reason):
    question = "并行组是什么？" if "并行组" in sentence else QUESTION  # a Chinese answer to a Chinese question
    (verdict,) = GroundingChecker().check(sentence, EVIDENCE, question)
    assert verdict.kept is kept
    if reason:
        assert reason in verdict.reason


def test_filler_repeats_and_a_cut_off_ending_are_removed():
    text = ("Sure! A ParallelGroup runs branches concurrently [1]. "
            "A ParallelGroup runs branches concurrently [1]. It joins the")
    verdicts = GroundingChecker().check(text, EVIDENCE, QUESTION, truncated=True)
    assert [(v.kept, v.filler) for v in verdicts] == [(False, True), (True, False), (False, False), (False, False)]
    assert verdicts[2].reason == "repeats an earlier sentence" and verdicts[3].reason == "cut off mid-sentence"


def test_code_only_where_code_was_asked_for_and_never_unfinished():
    done = "```python\nfrom studio_nb.kernel import ParallelGroup\ng = ParallelGroup('ctx', [a, b])\nFooBar()\n```"
    (as_code,) = GroundingChecker().check(done, EVIDENCE, QUESTION, allow_code=True)
    assert as_code.kept and as_code.unverified == ("studio_nb.kernel", "FooBar")
    (not_asked,) = GroundingChecker().check(done, EVIDENCE, QUESTION, allow_code=False)
    assert not not_asked.kept
    (cut,) = GroundingChecker().check("```python\nx = 1", EVIDENCE, QUESTION, allow_code=True)
    assert not cut.kept and cut.reason == "an unfinished code block"


def test_invalid_citations_are_removed_and_sentences_split_in_both_languages():
    (v,) = GroundingChecker().check("A ParallelGroup joins them [7].", EVIDENCE, QUESTION)
    assert v.kept and v.text == "A ParallelGroup joins them."
    assert split_sentences("一句话。第二句！Third one. Fourth?") == ["一句话。", "第二句！", "Third one.", "Fourth?"]


# ---------------------------------------------------------------------- one piece at a time, in order
ORDER_EVIDENCE = [
    "With autostop=True the environment polls the job status and waits at most 5 minutes, then calls stop().",
    "The JobManager keeps the status of every task it runs.",
]


@pytest.mark.parametrize(
    "sentence, kept",
    [
        ("The environment waits at most 5 minutes, then calls stop() [1].", True),  # follows one piece
        ("With autostop=True it polls the job status and then calls stop() [1].", True),
        # every word is in the evidence, but no piece says it: recombined from both, out of order
        ("The JobManager waits 5 minutes to run the status of every task.", False),
        ("SAGE runs the task status in the JobManager after 5 minutes.", False),
    ],
)
def test_a_sentence_is_checked_against_one_piece_with_word_order(sentence, kept):
    (verdict,) = GroundingChecker().check(sentence, ORDER_EVIDENCE, "How long does autostop=True wait?")
    assert verdict.kept is kept, verdict


def test_a_recombined_chinese_claim_is_dropped_and_a_faithful_one_kept():
    evidence = ["autostop=True 时，最长等待 5 分钟，然后尝试调用 stop()。", "JobManager 负责运行任务并记录任务状态。"]
    checker = GroundingChecker()
    (bad,) = checker.check("Sage 会在 5 分钟之后，运行 JobManager 中的任务状态。", evidence, "autostop 会等多久？")
    (good,) = checker.check("最长等待 5 分钟，然后调用 stop() [1]。", evidence, "autostop 会等多久？")
    assert not bad.kept and good.kept, (bad, good)


@pytest.mark.parametrize(
    "sentence, question, kept",
    [
        ("最长等待 5 分钟，然后调用 stop() [1]。", "How long does autostop=True wait?", False),
        ("It waits at most 5 minutes, then calls stop() [1].", "autostop 会等多久？", False),
        ("最长等待 5 分钟，然后调用 stop() [1]。", "autostop 会等多久？", True),
        ("With autostop=True it waits at most 5 minutes, then calls stop() [1].", "How long does autostop=True wait?", True),
    ],
)
def test_a_sentence_in_another_language_than_the_question_is_dropped(sentence, question, kept):
    evidence = ["autostop=True 时，最长等待 5 分钟，然后尝试调用 stop()。",
                "With autostop=True the environment waits at most 5 minutes, then calls stop()."]
    (verdict,) = GroundingChecker().check(sentence, evidence, question)
    assert verdict.kept is kept, verdict
    if not kept:
        assert verdict.reason == "not in the language of the question"


# ---------------------------------------------------------------------- a restatement of one span
TABLE = [
    "SagePorts.GATEWAY_DEFAULT # 8000 - sage-llm-gateway (OpenAI-compatible API)\n"
    "SagePorts.STUDIO_BACKEND # 8080 - sage-studio backend",
    "This document provides a comprehensive guide to the CI/CD pipeline, including workflows, "
    "environment setup, and best practices.",
    "HanLP requires Python 3.6 or later. GPU/TPU is suggested but not mandatory.",
    "To make a RESTful call, send a json request which contains at least a `text` field or a `tokens` field.",
]


@pytest.mark.parametrize(
    "sentence, question, kept, reason",
    [
        # near-verbatim restatements of one span: kept
        ("The guide covers the CI/CD pipeline, including workflows, environment setup and best practices.",
         "What does the CI guide cover?", True, None),
        ("HanLP requires Python 3.6 or later.", "Which Python does HanLP need?", True, None),
        ("The gateway default port is 8000.", "What is the gateway's default port?", True, None),
        # a number from the table's next row: its words are beside another number
        ("The gateway default port is 8080.", "What is the gateway's default port?", False, "'8080'"),
        # the last words swapped for others (here the question's) where the passage goes on
        ("This document provides a comprehensive guide to the CI/CD pipeline, including workflows, "
         "environment setup, and time.", "How much time does the CI take?", False, "where its source goes on"),
        # negation and qualifiers must agree with the span
        ("HanLP does not require Python 3.6 or later.", "Which Python does HanLP need?", False, "'not'"),
        ("The request can only contain a `tokens` field.", "Which fields can a request carry?", False, "'only'"),
        ("A GPU is suggested and mandatory.", "Does HanLP need a GPU?", False, "leaves out its source's 'not'"),
        # cut off: the claim it was about to make is missing
        ("HanLP requires Python 3.6 or later, which", "Which Python does HanLP need?", False, "cut off"),
    ],
)
def test_a_sentence_must_restate_one_span_of_one_piece(sentence, question, kept, reason):
    (verdict,) = GroundingChecker().check(sentence, TABLE, question)
    assert verdict.kept is kept, verdict
    if reason:
        assert reason in verdict.reason, verdict


def test_a_sentence_that_joins_two_passages_is_supported_by_neither():
    evidence = ["The gateway listens on port 8000 and forwards requests to the engines.",
                "The studio backend keeps every session in SQLite."]
    checker = GroundingChecker()
    (joined,) = checker.check("The gateway keeps every session on port 8000.", evidence, "What does the gateway do?")
    (one,) = checker.check("The gateway listens on port 8000.", evidence, "What does the gateway do?")
    assert not joined.kept and one.kept, (joined, one)


def test_the_questions_words_frame_a_sentence_only_where_the_span_speaks_of_them():
    # 145.2 is the latency of the example's Q1 entry; "Q2" stands on another line, in a list of choices
    evidence = ['"workload": "Q1 (Standard RAG)",   // Q1, Q2, or Q3\n"metrics": {\n  "latency_p99": 145.2,   // ms']
    question = "What do the benchmark workloads Q1, Q2 and Q3 stand for?"
    verdicts = GroundingChecker().check("- Q2: 145.2\n- Q1 is Standard RAG.", evidence, question)
    assert [v.kept for v in verdicts] == [False, True], verdicts


def test_names_and_code_alone_are_in_no_language():
    evidence = ["class HelloWorldJoin(BaseJoinFunction):\n    execute(payload, key, tag) 参数说明：key 是分区键"]
    (v,) = GroundingChecker().check("class HelloWorldJoin(BaseJoinFunction): [1]", evidence, "算子怎么拿到 key？")
    assert v.reason != "not in the language of the question", v
