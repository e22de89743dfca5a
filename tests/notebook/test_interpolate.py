"""``{var}`` interpolation: known names filled, everything else kept exactly as typed."""

from __future__ import annotations

import sys

import pytest

from studio_nb.notebook.interpolate import interpolate, last_error_text, prompt_namespace

NS = {"x": 41, "name": "SAGE", "In": ["", "a = 1", "b = 2"], "Out": {1: "one"}, "items": [1, 2, 3]}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("value {x}", "value 41"),
        ("{name} and {unknown}", "SAGE and {unknown}"),
        ("last input: {In[-1]}", "last input: b = 2"),
        ("{Out[1]} {Out[7]}", "one {Out[7]}"),  # a missing key stays literal
        ("{x!r:>5}|", "   41|"),
        ("{x:bad spec}", "{x:bad spec}"),
        ("{name.lower}", "{name.lower}"),  # no attribute access (it could run code)
        ("{__import__('os')}", "{__import__('os')}"),
        ("def f(): return {a: 1}", "def f(): return {a: 1}"),
        ("{{literal}} {x}", "{literal} 41"),
        ("a lone { brace {x}", "a lone { brace {x}"),  # not a template at all: untouched
        ("", ""),
    ],
)
def test_interpolate(template: str, expected: str) -> None:
    assert interpolate(template, NS) == expected


def test_err_is_the_last_traceback_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        {}["missing-key"]
    except KeyError as exc:
        monkeypatch.setattr(sys, "last_value", exc, raising=False)
        monkeypatch.setattr(sys, "last_traceback", exc.__traceback__, raising=False)
    text = interpolate("why? {Err}", prompt_namespace({}))
    assert text.startswith("why? Traceback")
    assert "KeyError: 'missing-key'" in text
    long = last_error_text(limit=20)
    assert long is not None and long.startswith("...\n") and long.endswith("'missing-key'")


def test_err_without_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "last_value", raising=False)
    assert last_error_text() is None
    assert interpolate("{Err}", prompt_namespace({})) == "(no error so far)"
    assert prompt_namespace({"Err": "mine"})["Err"] == "mine"  # a user's own Err wins
