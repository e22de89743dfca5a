"""The notebook as context: --explain-error with the failing cell, --code, --insert."""

from __future__ import annotations

from typing import Any

import pytest

from studio_nb.messages import Attachment
from studio_nb.notebook.context import code_blocks, error_names


@pytest.fixture(scope="module")
def shell(studio: Any) -> Any:
    from IPython.core.interactiveshell import InteractiveShell

    from studio_nb.notebook import use_pipeline

    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "studio_nb.notebook")
    use_pipeline(studio)
    yield ip
    use_pipeline(None)


def asked(studio: Any) -> Any:
    return studio.turns.last("default", "local")


def test_explain_error_attaches_the_failing_cell_and_searches_its_names(shell: Any, studio: Any) -> None:
    failing = shell.run_cell("def helper(x):\n    return x.zebra_count\n\nhelper(3)", store_history=True)
    assert failing.error_in_exec is not None
    n = failing.execution_count
    result = shell.run_cell("%sage_chat --explain-error", store_history=True)
    assert result.error_in_exec is None, result.error_in_exec
    turn = asked(studio)
    question = turn.question
    assert question.startswith(f"Explain this error and how to fix it in cell In[{n}], line 2: `return x.zebra_count`")
    assert "AttributeError: 'int' object has no attribute 'zebra_count'" in question
    pieces = turn.response.evidence.pieces
    assert pieces[0].kind == "attachment" and pieces[0].ref == f"In[{n}]"
    assert "return x.zebra_count" in pieces[0].text
    search = turn.trace.last("intent_router").input.search  # what retrieval looks for
    assert search.split()[0] == "AttributeError" and "zebra_count" in search.split()


def test_explain_error_without_an_error_says_so(studio: Any) -> None:
    import sys

    from IPython.core.interactiveshell import InteractiveShell

    from studio_nb.notebook.context import explain_error_request

    saved = getattr(sys, "last_value", None)
    try:
        sys.last_value = None
        assert explain_error_request(InteractiveShell.instance()) is None
    finally:
        sys.last_value = saved


def test_error_names_are_what_the_error_is_about() -> None:
    try:
        ParallelGrup  # noqa: F821  (the typo is the point)
    except NameError as exc:
        names = error_names(exc, "pipe = ParallelGrup(branches)")
    assert names[:2] == ["NameError", "ParallelGrup"] and "branches" in names and "name" not in names


def test_code_cell_is_attached_and_cited(shell: Any, studio: Any) -> None:
    result = shell.run_cell("%%sage_chat --code why is this slow?\nfor i in range(10**9):\n    total += i\n",
                            store_history=True)
    assert result.error_in_exec is None, result.error_in_exec
    turn = asked(studio)
    assert turn.question == "why is this slow?"
    first = turn.response.evidence.pieces[0]
    assert first.kind == "attachment" and first.ref.startswith("In[") and "total += i" in first.text


def test_insert_puts_the_answer_code_in_a_new_cell(shell: Any, studio: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    inserted: list[tuple[str, bool]] = []
    monkeypatch.setattr(shell, "set_next_input", lambda text, replace=False: inserted.append((text, replace)))
    studio.set_session_variant(session_id="ins", user="local", setting="answer_mode", value="generative")
    result = shell.run_cell("%sage_chat -s ins -i print a greeting", store_history=True)
    assert result.error_in_exec is None, result.error_in_exec
    assert inserted == [("print('hi')", False)]


def test_code_blocks() -> None:
    assert code_blocks("x ```py\na = 1\n``` y ```\nb = 2\n```") == "a = 1\n\nb = 2"
    assert code_blocks("no code here") == ""


def test_attachment_pieces_come_first_and_keep_their_label(studio: Any) -> None:
    turn = studio.ask("what does this cell compute?", session_id="att", user="local",
                      attachments=(Attachment("nb.ipynb:C3", "total = sum(range(10))"),))
    pieces = turn.response.evidence.pieces
    assert (pieces[0].n, pieces[0].ref, pieces[0].text) == (1, "nb.ipynb:C3", "total = sum(range(10))")


def test_panel_explain_error_and_insert_code(shell: Any, studio: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio_nb.notebook import ChatPanel

    failing = shell.run_cell("ratio = 1 / 0", store_history=True)
    assert failing.error_in_exec is not None
    panel = ChatPanel(studio, session="panel-ctx")
    resp = panel.explain_error().result(timeout=300)
    first = resp.evidence.pieces[0]
    assert first.kind == "attachment" and first.ref == f"In[{failing.execution_count}]" and "1 / 0" in first.text
    assert "ZeroDivisionError" in resp.question
    inserted: list[str] = []
    monkeypatch.setattr(shell, "set_next_input", lambda text, replace=False: inserted.append(text))
    studio.set_session_variant(session_id="panel-ctx", user="local", setting="answer_mode", value="generative")
    panel.send("print a greeting").result(timeout=300)
    assert panel.insert_button.disabled is False
    panel.insert_button.click()
    assert inserted == ["print('hi')"] and "inserted" in panel.status.value
