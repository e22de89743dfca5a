"""Accuracy floors on the shipped eval set (not timing: the bench measures speed)."""

from importlib import resources

import pytest
import yaml

from studio_nb.services.intent import Intent


@pytest.fixture(scope="module")
def items():
    raw = resources.files("studio_nb.services.intent").joinpath("eval_set.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(raw)["items"]


def _accuracy(clf, items):
    return sum(clf.classify(i["text"]).intent is Intent.parse(i["intent"]) for i in items) / len(items)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_hybrid_is_above_85_percent_in_each_language(classifiers, items, lang):
    assert _accuracy(classifiers["hybrid"], [i for i in items if i["lang"] == lang]) >= 0.85


def test_hybrid_on_the_untuned_holdout_split(classifiers, items):
    holdout = [i for i in items if i.get("split") == "holdout"]
    assert len(holdout) >= 40
    assert _accuracy(classifiers["hybrid"], holdout) >= 0.80


def test_hybrid_beats_embedding_alone_on_chinese(classifiers, items):
    zh = [i for i in items if i["lang"] == "zh"]
    assert _accuracy(classifiers["hybrid"], zh) > _accuracy(classifiers["embedding"], zh) + 0.1
