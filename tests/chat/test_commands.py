"""Slash commands answered by the pipeline's own operations, as a chat user meets them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from studio_nb import commands
from studio_nb.commands import ChatCommands


def cmds(studio: Any, workspace: Path, user: str = "alice", session: str = "chat:1", **kw: Any) -> ChatCommands:
    return ChatCommands(studio, user=user, session_id=session, workspace=workspace, **kw)


def test_learn_then_ask_cites_the_learned_file_with_progress(studio: Any, workspace: Path) -> None:
    lines: list[str] = []
    out = cmds(studio, workspace).run("/learn notes", progress=lines.append)
    assert "domain `notes`" in out and "private to you" in out and "2 file(s) seen" in out
    assert any(line.startswith("/learn notes: embedding") for line in lines), lines
    turn = studio.ask("what does the zebra protocol send twice?", session_id="chat:1", user="alice")
    turn.text()
    refs = [p.ref for p in turn.response.evidence.pieces]
    assert any(r.startswith("notes/zebra.md:L") for r in refs), refs


def test_learn_is_private_and_other_users_do_not_see_it(studio: Any, workspace: Path) -> None:
    cmds(studio, workspace).run("/learn notes")
    bob = cmds(studio, workspace, user="bob").run("/sources")
    assert "`notes`" not in bob
    alice = cmds(studio, workspace).run("/sources")
    assert "| `notes` | yours | 2 |" in alice


@pytest.mark.parametrize("path", ["..", "../..", "/etc", "notes/../../x"])
def test_learn_refuses_paths_outside_the_workspace(studio: Any, workspace: Path, path: str) -> None:
    out = cmds(studio, workspace).run(f"/learn {path}")
    assert "`path_escape`" in out or "no file or folder" in out
    assert "Learned" not in out


def test_learn_refuses_a_link_that_leads_out(studio: Any, workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "s.md").write_text("secret", encoding="utf-8")
    link = workspace / "escape"
    link.symlink_to(outside)
    try:
        out = cmds(studio, workspace).run("/learn escape")
    finally:
        link.unlink()
    assert "`path_escape`" in out


def test_forget_removes_only_your_own_domain(studio: Any, workspace: Path) -> None:
    cmds(studio, workspace).run("/learn notes/llama.md")
    assert "no domain `llama` you can see" in cmds(studio, workspace, user="bob").run("/forget llama")
    assert "Forgot domain `llama`" in cmds(studio, workspace).run("/forget llama")
    assert "`llama`" not in cmds(studio, workspace).run("/sources")


def test_sources_lists_what_the_last_answer_cited(studio: Any, workspace: Path) -> None:
    c = cmds(studio, workspace, session="chat:cited")
    c.run("/learn notes")
    studio.ask("what does the zebra protocol send twice?", session_id="chat:cited", user="alice").text()
    out = c.run("/sources")
    assert "**The last answer cited**" in out and "notes/zebra.md:L" in out


def test_mode_switches_this_session_only(studio: Any, workspace: Path) -> None:
    c = cmds(studio, workspace, session="chat:mode")
    assert "now answers in `extractive`" in c.run("/mode extractive")
    assert "answers in `extractive` mode" in c.run("/mode")
    turn = studio.ask("what does the zebra protocol send twice?", session_id="chat:mode", user="alice")
    assert turn.response.mode == "extractive"
    other = studio.ask("what does the zebra protocol send twice?", session_id="chat:other", user="alice")
    assert other.response.mode == "grounded"
    assert "`/mode grounded|extractive|generative`" in c.run("/mode loud")


def test_trace_shows_the_last_turns_operators(studio: Any, workspace: Path) -> None:
    c = cmds(studio, workspace, session="chat:trace")
    assert "No turn yet" in c.run("/trace")
    studio.ask("what does the zebra protocol send twice?", session_id="chat:trace", user="alice").text()
    out = c.run("/trace")
    assert "| `knowledge_rag` |" in out and "| `evidence` |" in out and " ms |" in out


def test_stop_help_and_unknown(studio: Any, workspace: Path) -> None:
    stopped: list[bool] = []
    c = cmds(studio, workspace, stop=lambda: stopped.append(True) or True)
    assert c.run("/stop") == "Stopped the answer." and stopped == [True]
    assert "Nothing is being answered" in cmds(studio, workspace).run("/stop")
    assert "`/learn PATH`" in c.run("/help")
    assert "Unknown command `/rebuild`" in c.run("/rebuild")


@pytest.mark.parametrize(("text", "command"), [
    ("rebuild the index", "/learn PATH"),
    ("please re-index my notes folder", "/learn PATH"),
    ("delete my data.csv", "/forget DOMAIN"),
    ("remove the papers domain", "/forget DOMAIN"),
    ("switch to extractive mode", "/mode"),
    ("show me the trace", "/trace"),
])
def test_plain_word_requests_get_the_command(text: str, command: str) -> None:
    hint = commands.hint(text)
    assert hint is not None and command in hint


@pytest.mark.parametrize("text", [
    "what is a ParallelGroup?", "SAGE 的 LocalEnvironment 和 RemoteEnvironment 有什么区别？",
    "how do I register a service", "/learn notes",
])
def test_questions_get_no_hint(text: str) -> None:
    assert commands.hint(text) is None
