"""The fact scorer every answer benchmark uses (bench/facts.py), on the rule of ../shared/eval/README.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from facts import coverage, fact_covered, key_tokens  # noqa: E402


def test_key_tokens_are_identifiers_numbers_paths_and_cjk_bigrams():
    assert key_tokens("Call env.submit() with autostop=True, e.g. after 5 minutes") == [
        "call", "env.submit", "autostop", "true", "after", "minutes"]
    assert key_tokens("最长等待 5 分钟") == ["最长", "长等", "等待", "分钟"]  # "5" is one character: not a key token


@pytest.mark.parametrize(
    "fact, answer, covered",
    [
        ("it gives up after 5 minutes", "… waits at most 5 minutes, then gives up", True),  # 3 of 4 tokens
        ("it gives up after 5 minutes", "it waits", False),
        ("then it calls stop()", "then it calls env.stop()", True),  # a part of a dotted name counts
        ("默认语言为中文", "Profile 的默认语言为中文（zh）", True),
        ("默认语言为中文", "语言模型", False),
    ],
)
def test_a_fact_counts_when_60_percent_of_its_key_tokens_are_there(fact, answer, covered):
    assert fact_covered(fact, answer) is covered


def test_only_the_first_1000_characters_count():
    facts = ["IndexIVFPQ"]
    assert coverage("x" * 990 + " IndexIVFPQ", facts) == 0.0
    assert coverage("IndexIVFPQ " + "x" * 990, facts) == 1.0
