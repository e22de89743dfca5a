"""The magic's text handling: options vs free text, code extraction, the `?` transformer."""

from __future__ import annotations

import pytest

from studio_nb.notebook.magics import _is_subcommand, extract_code, keep_question_marks, split_options


@pytest.mark.parametrize(
    ("line", "opts", "rest"),
    [
        ("what's a ParallelGroup?", [], "what's a ParallelGroup?"),
        ("-s review -v what's -v for?", ["-s", "review", "-v"], "what's -v for?"),
        ("-f=json --no-stream hi", ["-f=json", "--no-stream"], "hi"),
        ("-d docs -d examples  spaced   text ", ["-d", "docs", "-d", "examples"], "spaced   text"),
        ("-- -v is text here", [], "-v is text here"),
        ("-s", [], "-s"),  # an option missing its value is left as text for argparse to reject
        ("", [], ""),
    ],
)
def test_split_options(line: str, opts: list[str], rest: str) -> None:
    assert split_options(line) == (opts, rest)


def test_extract_code_joins_fenced_blocks() -> None:
    text = "Use this:\n```python\nxs = [3, 1]\n```\nthen\n```\nprint(sorted(xs))\n```"
    assert extract_code(text) == "xs = [3, 1]\n\nprint(sorted(xs))"
    assert extract_code("```python\nunterminated = 1\n") == "unterminated = 1"


def test_extract_code_without_blocks_comments_the_answer() -> None:
    assert extract_code("No code.\nJust words.") == "# No code.\n# Just words."


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["help"], True),
        (["help", "me", "write", "a", "loop"], False),  # a question that starts with a subcommand word
        (["history"], True),
        (["ingest", "docs/"], True),
        (["ingest", "docs/", "--domain", "mine"], True),
        (["ingest", "the", "docs", "please"], False),
        (["reset", "everything"], False),
        ([], False),
    ],
)
def test_is_subcommand(words: list[str], expected: bool) -> None:
    assert _is_subcommand(words) is expected


def test_question_marks_are_kept_for_sage_chat_only() -> None:
    lines = ["x = 1\n", "%sage_chat what is a ParallelGroup?\n", "  %sage_chat why?\n", "len?\n"]
    out = keep_question_marks(lines)
    assert out[0] == "x = 1\n"
    assert out[1] == "get_ipython().run_line_magic('sage_chat', 'what is a ParallelGroup?')\n"
    assert out[2] == "  get_ipython().run_line_magic('sage_chat', 'why?')\n"
    assert out[3] == "len?\n"  # ordinary help requests still work
    body = ["%%sage_chat -v\n", "%sage_chat inside a cell magic body?\n"]
    assert keep_question_marks(body) == body


def test_question_mark_rewrite_is_a_string_literal_not_code() -> None:
    (line,) = keep_question_marks(["%sage_chat ') ; import os ; os.system('x') ; ('?"])
    assert line == "get_ipython().run_line_magic('sage_chat', \"') ; import os ; os.system('x') ; ('?\")"
