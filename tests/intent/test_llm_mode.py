"""llm mode with the real bundled chat model (SmolLM2-135M via llama.cpp)."""

import pytest

from studio_nb.services.intent import Intent, IntentClassifier
from studio_nb.services.intent.llm import LLM_CONFIDENCE, WORDS, parse_label

MESSAGES = ["compute 17*23", "你好", "What is a DataStream in SAGE?", "这段代码为什么报错"]


@pytest.fixture(scope="module")
def llm_clf(chat_llm):
    clf = IntentClassifier("llm", llm=chat_llm)
    clf.warm_up()
    return clf


@pytest.mark.parametrize("text", MESSAGES)
def test_llm_mode_always_answers_one_of_the_four_labels(llm_clf, text):
    r = llm_clf.classify(text)
    assert isinstance(r.intent, Intent)
    assert r.stage("llm")["raw"] in WORDS  # the grammar allowed nothing else
    assert r.confidence == LLM_CONFIDENCE and r.mode == "llm"


def test_hybrid_with_the_real_llm_stays_within_the_labels(chat_llm, embedder):
    clf = IntentClassifier("hybrid", embedder=embedder, llm=chat_llm, llm_threshold=1.01)  # always unsure
    r = clf.classify("Show me code that lists the files in a folder")
    assert isinstance(r.intent, Intent)
    llm_stage = r.stage("llm")
    if r.stage("fusion")["agree"] is False:
        assert llm_stage is not None and llm_stage["raw"] in WORDS
    assert clf.classify("compute 17*23").intent is Intent.SYSTEM_OPERATION


@pytest.mark.parametrize(
    "raw, intent",
    [("action", Intent.SYSTEM_OPERATION), (" code\n", Intent.SAGE_CODING), ("Label: GENERAL_CHAT", Intent.GENERAL_CHAT),
     ("It is a question.", Intent.KNOWLEDGE_QUERY), ("code or chat", None), ("", None)],
)
def test_parse_label(raw, intent):
    assert parse_label(raw) is intent
