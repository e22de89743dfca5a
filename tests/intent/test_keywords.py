import pytest

from studio_nb.services.intent.keywords import KeywordScorer
from studio_nb.services.text import cjk_share
from studio_nb.services.intent.types import Intent


@pytest.fixture(scope="module")
def kw():
    return KeywordScorer()


@pytest.mark.parametrize(
    "text, expr",
    [("compute 17*23", "17*23"), ("计算 (15 + 27) / 6", "(15 + 27) / 6"), ("what is 2**10", "2**10"),
     ("3.5 x 4 = ?", "3.5 x 4")],
)
def test_arithmetic_is_matched_whole_and_points_to_system_operation(kw, text, expr):
    s = kw.score(text)
    assert (expr, Intent.SYSTEM_OPERATION, 3.0) in s.matched
    assert s.top is Intent.SYSTEM_OPERATION


def test_dates_are_not_arithmetic(kw):
    hits = [m for m, _, _ in kw.score("the release of 2024-01-15 and 2024/02/01").matched]
    assert not any("2024" in h or "01" in h for h in hits)


def test_latin_terms_respect_word_boundaries_but_chinese_matches_substrings(kw):
    assert "hi" not in [m for m, _, _ in kw.score("this is something").matched]
    assert "hi" in [m for m, _, _ in kw.score("oh hi").matched]
    matched = [m for m, _, _ in kw.score("这段代码为什么报错").matched]  # no spaces in Chinese
    assert "代码" in matched and "报错" in matched


def test_scores_are_a_distribution_and_uniform_without_evidence(kw):
    s = kw.score("zzz qqq")
    assert not s.any_hit
    assert set(s.scores.values()) == {0.25}
    s = kw.score("帮我写一个函数")
    assert abs(sum(s.scores.values()) - 1.0) < 1e-9
    assert s.top is Intent.SAGE_CODING and s.scores[Intent.SAGE_CODING] > 0.5


def test_add_terms_extends_the_table_once(kw):
    scorer = KeywordScorer()
    scorer.add_terms(Intent.KNOWLEDGE_QUERY, ["flinkish", "flinkish"], weight=2.0)
    s = scorer.score("tell me about flinkish")
    assert [m for m in s.matched if m[0] == "flinkish"] == [("flinkish", Intent.KNOWLEDGE_QUERY, 2.0)]


def test_cjk_share():
    assert cjk_share("hello world") == 0.0
    assert cjk_share("你好") == 1.0
    assert 0.0 < cjk_share("SAGE 的算子") < 1.0
    assert cjk_share("123 ???") == 0.0
