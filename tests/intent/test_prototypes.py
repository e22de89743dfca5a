from importlib import resources

import pytest
import yaml

from studio_nb.errors import ConfigError
from studio_nb.services.intent import Intent
from studio_nb.services.intent.prototypes import load_prototypes


def _eval_items():
    raw = resources.files("studio_nb.services.intent").joinpath("eval_set.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(raw)["items"]


def _norm(t: str) -> str:
    return "".join(ch for ch in t.lower() if ch.isalnum())


def test_prototypes_ship_in_the_package_and_cover_every_intent_in_both_languages():
    protos = load_prototypes()
    for intent in Intent:
        for lang in ("en", "zh"):
            assert sum(p.intent is intent and p.lang == lang for p in protos) >= 15, (intent, lang)


def test_eval_set_is_large_enough_labelled_and_disjoint_from_prototypes():
    items = _eval_items()
    for lang in ("en", "zh"):
        assert sum(i["lang"] == lang for i in items) >= 60
        for intent in Intent:
            assert sum(i["lang"] == lang and i["intent"] == intent.value for i in items) >= 15
    assert all(Intent.parse(i["intent"]) for i in items)
    proto_texts = {_norm(p.text) for p in load_prototypes()}
    overlap = [i["text"] for i in items if _norm(i["text"]) in proto_texts]
    assert overlap == []
    assert len({_norm(i["text"]) for i in items}) == len(items)


def test_bad_prototype_files_give_config_errors(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cannot read"):
        load_prototypes(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("KNOWLEDGE_QUERY: {en: [ok]}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="SAGE_CODING"):  # every intent needs an example
        load_prototypes(bad)
    bad.write_text("NOT_AN_INTENT: {en: [x]}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown intent"):
        load_prototypes(bad)
    bad.write_text("KNOWLEDGE_QUERY: {en: [1, '']}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="non-empty strings"):
        load_prototypes(bad)
