"""Every non-llm mode with the real embedding model, four intents in two languages."""

import subprocess
import sys

import pytest

from studio_nb.errors import ConfigError, StudioError
from studio_nb.services.intent import Intent, IntentClassifier

K, C, S, G = Intent.KNOWLEDGE_QUERY, Intent.SAGE_CODING, Intent.SYSTEM_OPERATION, Intent.GENERAL_CHAT

# Not prototypes and not eval items: fresh phrasings of each intent.
CASES = [
    ("en", K, "What does a SinkFunction do in a SAGE pipeline?"),
    ("en", C, "Write a FilterFunction that drops records with an empty text field."),
    ("en", S, "compute 17*23"),
    ("en", S, "list the files in my workspace"),
    ("en", G, "hello, nice to meet you!"),
    ("zh", K, "SAGE 的 LocalEnvironment 和 RemoteEnvironment 有什么区别？"),
    ("zh", C, "这段代码为什么报错：NameError: name 'env' is not defined"),
    ("zh", S, "计算 17*23"),
    ("zh", S, "现在几点了"),
    ("zh", G, "你好，很高兴认识你"),
]


@pytest.mark.parametrize("mode", ["keyword", "hybrid"])
@pytest.mark.parametrize("lang, intent, text", CASES)
def test_keyword_and_hybrid_get_every_case(classifiers, mode, lang, intent, text):
    r = classifiers[mode].classify(text)
    assert r.intent is intent, r.stages
    assert r.mode == mode and 0.0 <= r.confidence <= 1.0


@pytest.mark.parametrize("lang, intent, text", [c for c in CASES if c[0] == "en"])
def test_embedding_mode_gets_every_english_case(classifiers, lang, intent, text):
    r = classifiers["embedding"].classify(text)
    assert r.intent is intent, r.stages
    assert r.matched_keywords == ()  # embedding mode does not look at keywords


def test_embedding_mode_on_chinese_is_measured_weaker(classifiers):
    # The default all-MiniLM-L6-v2 is English-only: we only ask for a majority here, the
    # bench reports the real figure, and hybrid (above) gets all of them.
    zh = [c for c in CASES if c[0] == "zh"]
    right = sum(classifiers["embedding"].classify(text).intent is intent for _, intent, text in zh)
    assert right >= len(zh) // 2 + 1


@pytest.mark.parametrize("mode", ["keyword", "embedding", "hybrid"])
def test_arithmetic_is_a_system_operation_in_every_mode(classifiers, mode):
    for text in ("compute 17*23", "计算 17*23", "what is 45 * 9?"):
        assert classifiers[mode].classify(text).intent is S


def test_hybrid_trace_records_every_stage(classifiers):
    r = classifiers["hybrid"].classify("compute 17*23")
    assert [t["stage"] for t in r.stages] == ["keyword", "embedding", "fusion", "domains"]
    kw, emb, fusion, dom = r.stages
    assert "17*23->SYSTEM_OPERATION:3" in kw["matched"] and "17*23" in r.matched_keywords
    for stage in (kw, emb, fusion):
        assert set(stage["scores"]) == {i.value for i in Intent}
        assert abs(sum(stage["scores"].values()) - 1.0) < 1e-3
    assert fusion["weights"] == {"keyword": 0.3, "embedding": 0.7} and fusion["cjk_share"] == 0.0
    assert emb["nearest"]["intent"] == "SYSTEM_OPERATION" and -1.0 <= emb["nearest"]["similarity"] <= 1.0
    assert r.confidence == pytest.approx(fusion["scores"]["SYSTEM_OPERATION"], abs=1e-3)
    assert dom["domains"] == [] and r.domains == ()


def test_chinese_shifts_weight_towards_keywords(classifiers):
    fusion = classifiers["hybrid"].classify("帮我写一个读取文件的函数").stage("fusion")
    assert fusion["cjk_share"] == 1.0
    assert fusion["weights"]["embedding"] == pytest.approx(0.7 * 0.6, abs=1e-3)
    assert fusion["weights"]["keyword"] == pytest.approx(1 - 0.7 * 0.6, abs=1e-3)


def test_domains_follow_the_intent(classifiers):
    clf = classifiers["hybrid"]
    assert clf.classify("What is a ParallelGroup?").domains == ()  # names no domain: all readable ones
    assert clf.classify("Write a map function that squares numbers").domains[:2] == ("examples", "sage_docs")
    assert clf.classify("如何写好论文的实验部分？").domains == ("research_guidance",)
    assert clf.classify("thanks!").domains == ()


def test_add_domain_routes_new_domains(embedder):
    clf = IntentClassifier("hybrid", embedder=embedder)
    clf.add_domain("papers", keywords=("arxiv", "preprint"))
    r = clf.classify("What does the arxiv preprint on stream joins propose?")
    assert r.intent is K and "papers" in r.domains
    assert "papers" in clf.domains and "papers" in repr(clf)


def test_empty_and_bad_input():
    clf = IntentClassifier("keyword")
    r = clf.classify("   ")
    assert r.intent is G and r.confidence == 0.0 and r.stages[0]["note"] == "empty message"
    with pytest.raises(StudioError) as exc:
        clf.classify(None)
    assert exc.value.code == "bad_input"


def test_bad_configuration_is_rejected_with_the_fix():
    with pytest.raises(ConfigError, match="keyword, embedding, llm, hybrid"):
        IntentClassifier("fast")
    with pytest.raises(ConfigError, match="llm="):
        IntentClassifier("llm")
    with pytest.raises(ConfigError):
        IntentClassifier(keyword_weight=-1)
    with pytest.raises(ConfigError):
        IntentClassifier(cjk_embedding_trust=2)


def test_init_is_cheap_and_imports_no_heavy_library():
    code = (
        "import sys; from studio_nb.services.intent import IntentClassifier; "
        "c = IntentClassifier('hybrid'); c.add_domain('x'); "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'llama_cpp', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_warm_up_is_idempotent_and_long_messages_are_fine(classifiers):
    clf = classifiers["hybrid"]
    clf.warm_up()
    clf.warm_up()
    r = clf.classify("Traceback (most recent call last):\n" + "  File 'x.py', line 3\n" * 2000 + "ValueError: bad")
    assert r.intent is C


def test_prototype_embeddings_are_kept_on_disk_between_runs(tmp_path, embedder):
    """The second classifier with the same model and prototypes loads the matrix instead of
    embedding 185 prototypes again (the largest part of a warm-up after the model)."""
    import numpy as np

    first = IntentClassifier("embedding", embedder=embedder, cache_dir=str(tmp_path))
    first.warm_up()
    assert not first._scorer.loaded_from_cache and list(tmp_path.glob("intent-prototypes-*.npy"))
    encoded = embedder.encoded
    second = IntentClassifier("embedding", embedder=embedder, cache_dir=str(tmp_path))
    second.warm_up()
    assert second._scorer.loaded_from_cache and embedder.encoded == encoded  # nothing embedded
    assert np.array_equal(first._scorer._matrix, second._scorer._matrix)
    text = "How do I write a MapFunction?"
    assert first.classify(text).intent == second.classify(text).intent
