"""``%sage_chat`` in a real IPython shell against the real Studio pipeline and model."""

from __future__ import annotations

import json
from typing import Any

import pytest
from IPython.core.error import UsageError

from studio_nb import present
from studio_nb.messages import Response
from studio_nb.notebook.magics import CURSOR, HELP, extract_code

pytestmark = pytest.mark.slow

INTENTS = {"KNOWLEDGE_QUERY", "SAGE_CODING", "SYSTEM_OPERATION", "GENERAL_CHAT"}


def _questions(pipe: Any, session: str) -> list[str]:
    return [t.question for t in pipe.memory.history(session)]


def test_line_magic_streams_the_answer_and_sets_sage_last(run: Any, shell: Any, published: list) -> None:
    result = run("%sage_chat -s stream what is a ParallelGroup?")
    assert result.success, result.error_in_exec
    resp = shell.user_ns["sage_last"]
    assert isinstance(resp, Response) and resp.text.strip() and resp.intent in INTENTS
    assert resp.session_id == "stream"

    # one display, then in-place updates of that same display
    first, updates = published[0], published[1:]
    assert first.display_id and not first.update
    assert updates and all(u.update and u.display_id == first.display_id for u in updates)
    partials = [u.text().removesuffix(CURSOR) for u in updates[:-1]]
    assert len(set(partials)) >= 3, "the answer should arrive in several pieces"
    # evidence first: the first update already shows the cited passages, before any synthesis
    assert resp.evidence and partials[0].startswith("[1] ") and "In short" not in partials[0]
    # then the answer only grows while it streams (each redraw extends the previous one)
    assert all(b.startswith(a.rstrip()) for a, b in zip(partials, partials[1:]) if a.strip()), partials
    assert updates[-1].data["text/markdown"] == present.markdown(resp)
    assert CURSOR not in updates[-1].text()
    # the question mark did not turn the line into a help request
    assert _questions(_pipe(shell), "stream") == ["what is a ParallelGroup?"]


def _pipe(shell: Any) -> Any:
    from studio_nb.notebook import kernel_pipeline

    return kernel_pipeline()


def test_cell_magic_with_interpolation(run: Any, shell: Any, published: list) -> None:
    assert run("topic = 'hnswlib'\nlimit = 3").success
    result = run(
        "%%sage_chat -s interp\nTell me about {topic} in {limit} words; {nobody} stays; {topic.upper}"
    )
    assert result.success, result.error_in_exec
    assert _questions(_pipe(shell), "interp") == [
        "Tell me about hnswlib in 3 words; {nobody} stays; {topic.upper}"
    ]
    result = run("%sage_chat -s interp --raw keep {topic} as is")
    assert result.success
    assert _questions(_pipe(shell), "interp")[-1] == "keep {topic} as is"
    # IPython's own line expansion (which evals `{expr}` and `$name`) is off for this magic
    assert run("%sage_chat -s interp {topic} but not {topic.upper} or $topic").success
    assert _questions(_pipe(shell), "interp")[-1] == "hnswlib but not {topic.upper} or $topic"


def test_err_brings_the_last_traceback(run: Any, shell: Any, published: list) -> None:
    failed = run("int('not a number')")
    assert not failed.success
    result = run("%sage_chat -s err why did my cell fail? {Err}")
    assert result.success, result.error_in_exec
    (question,) = _questions(_pipe(shell), "err")
    assert question.startswith("why did my cell fail? Traceback")
    assert "ValueError: invalid literal for int() with base 10: 'not a number'" in question
    assert "interactiveshell.py" not in question  # IPython's own frames are dropped


def test_in_history_is_usable(run: Any, shell: Any, published: list) -> None:
    assert run("value = 6 * 7").success
    assert run("%sage_chat -s hist explain the code `{In[-2]}`").success
    assert _questions(_pipe(shell), "hist") == ["explain the code `value = 6 * 7`"]


def test_verbose_shows_the_operator_trace(run: Any, shell: Any, published: list) -> None:
    assert run("%sage_chat -s verbose -v --no-stream hello there").success
    (only,) = published  # --no-stream: one display, no updates
    md = only.data["text/markdown"]
    resp = shell.user_ns["sage_last"]
    assert md.startswith(present.markdown(resp))
    for op in ("intent_router", "prompt_builder", "llm_inference", "grounding"):
        assert f"| {op} | completed |" in md


def test_text_format(run: Any, shell: Any, published: list) -> None:
    assert run("%sage_chat -s fmt -f text what is hnswlib used for in studio-nb").success
    resp = shell.user_ns["sage_last"]
    assert all(set(p.data) == {"text/plain"} for p in published)
    final = published[-1].text()
    assert final.startswith(resp.text)
    if resp.evidence and resp.evidence.pieces:  # the cited passages carry their references
        assert resp.evidence.pieces[0].ref in final
    elif resp.sources:
        assert "Sources:" in final and resp.sources[0].ref in final


def test_json_format(run: Any, shell: Any, published: list) -> None:
    assert run("%sage_chat -s fmt -f json hi").success
    (only,) = published
    resp = shell.user_ns["sage_last"]
    assert only.data["application/json"] == resp.to_dict()
    assert json.loads(only.text()) == json.loads(json.dumps(resp.to_dict()))


def test_code_format_puts_the_code_in_the_next_cell(run: Any, shell: Any, published: list) -> None:
    shell.rl_next_input = None
    assert run("%sage_chat -s fmt -f code write a python function that reverses a list").success
    resp = shell.user_ns["sage_last"]
    assert shell.rl_next_input == extract_code(resp.text)
    assert shell.rl_next_input.strip()


def test_subcommands(run: Any, shell: Any, published: list, capsys: pytest.CaptureFixture[str]) -> None:
    pipe = _pipe(shell)
    assert run("%sage_chat -s subs what does the memory store keep").success
    published.clear()

    assert run("%sage_chat -s subs history").success
    (hist,) = published
    assert "what does the memory store keep" in hist.data["text/markdown"]

    published.clear()
    assert run("%sage_chat sessions").success
    (table,) = published
    assert "`subs`" in table.data["text/markdown"]

    published.clear()
    assert run("%sage_chat pipeline").success
    (graph,) = published
    assert graph.data["image/svg+xml"].startswith("<svg") and "llm_inference" in graph.data["image/svg+xml"]

    capsys.readouterr()
    assert run("%sage_chat -s subs reset").success
    assert "cleared 1 turn(s) of session 'subs'" in capsys.readouterr().out
    assert "subs" not in [s.session_id for s in pipe.memory.sessions("local")]
    assert run("%sage_chat -s subs history").success
    assert "session 'subs' has no turns yet" in capsys.readouterr().out

    assert run("%sage_chat help").success
    assert HELP in capsys.readouterr().out

    assert run("%sage_chat -s switched").success
    assert "default session is now 'switched'" in capsys.readouterr().out
    assert run("%sage_chat hello again").success
    assert shell.user_ns["sage_last"].session_id == "switched"
    shell.run_line_magic("config", "StudioMagics.session = 'default'")


def test_ingest_subcommand(run: Any, shell: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "zebra.md").write_text("# Zebra pipelines\n\nA zebrafish operator counts stripes in parallel.\n")
    capsys.readouterr()
    assert run(f"%sage_chat ingest {notes} --domain zebra_notes").success
    out = capsys.readouterr().out
    assert "ingested domain 'zebra_notes'" in out and "files seen: 1" in out
    hits = _pipe(shell).search("zebrafish stripes", domains=["zebra_notes"], k=1)
    assert hits and "zebrafish" in hits[0].chunk.text


def test_usage_errors(run: Any, shell: Any, published: list) -> None:
    empty = run("%sage_chat")
    assert isinstance(empty.error_in_exec, UsageError)
    bad = run("%sage_chat -f yaml hi")
    assert bad.error_in_exec is not None  # argparse rejects the format
    too_long = run("%sage_chat " + "word " * 3000)
    assert isinstance(too_long.error_in_exec, UsageError)
    assert str(too_long.error_in_exec).startswith("[")  # "[code] message" from the StudioError


def test_reset_and_history_only_see_the_magics_user(run: Any, shell: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue #11 F6: `%sage_chat reset` no longer clears any user's session."""
    from studio_nb.services.memory import StoredTurn

    pipe = _pipe(shell)
    pipe.memory.save_turn(StoredTurn.new("someone-elses", "their question", "their answer", user="mallory"))
    capsys.readouterr()
    assert run("%sage_chat -s someone-elses reset").success
    assert "cleared 0 turn(s) of session 'someone-elses'" in capsys.readouterr().out
    assert run("%sage_chat -s someone-elses history").success
    assert "has no turns yet" in capsys.readouterr().out
    assert len(pipe.memory.history("someone-elses", user="mallory")) == 1
