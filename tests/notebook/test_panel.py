"""``ChatPanel`` driven headless (no browser) against the real Studio pipeline and model."""

from __future__ import annotations

import asyncio
import concurrent.futures
from html import escape
from typing import Any

import pytest

from studio_nb.errors import BusyError, ConfigError
from studio_nb.messages import TextDelta
from studio_nb.notebook import ChatPanel

pytestmark = pytest.mark.slow


def _watch(panel: ChatPanel) -> list[str]:
    values: list[str] = []
    panel.answer.observe(lambda change: values.append(change["new"]), names="value")
    return values


def test_send_streams_into_the_widgets_without_blocking(studio_pipe: Any) -> None:
    panel = ChatPanel(studio_pipe, session="panel-send", updates_per_second=1000)
    values = _watch(panel)
    panel.input.value = "what does a LocalEnvironment run on?"
    fut = panel.send()
    assert isinstance(fut, concurrent.futures.Future)
    assert not fut.done() and panel.busy  # send() returned at once: the caller is not blocked
    assert panel.input.value == "" and panel.send_button.disabled and not panel.stop_button.disabled
    with pytest.raises(BusyError):
        panel.send("a second question while the first streams")

    resp = fut.result(timeout=300)
    assert panel.wait(5) and not panel.busy
    assert resp is panel.response and resp.text.strip()
    assert panel.text == resp.text
    assert "what does a LocalEnvironment run on?" in panel.answer.value
    assert escape(resp.synthesis) in panel.answer.value  # the checked synthesis ...
    for piece in resp.evidence.pieces if resp.evidence else ():  # ... under the cited evidence
        assert escape(piece.text) in panel.answer.value and escape(piece.ref) in panel.answer.value
    partial = [v for v in values if "studio-answer" in v]
    assert len(set(partial)) >= 3, "the answer should be redrawn as tokens arrive"
    assert panel.answer_updates >= 3
    for op in ("intent_router", "knowledge_rag", "llm_inference"):
        assert f"<code>{op}</code>" in panel.steps.value
    assert "ms</td>" in panel.steps.value
    if resp.sources:
        assert escape(resp.sources[0].ref) in panel.sources.value
    assert panel.status_state == "done" and resp.intent in panel.status.value
    assert not panel.send_button.disabled and panel.stop_button.disabled
    assert [t.question for t in studio_pipe.memory.history("panel-send")] == ["what does a LocalEnvironment run on?"]


def test_stop_cancels_generation(studio_pipe: Any) -> None:
    panel = ChatPanel(studio_pipe, session="panel-stop")
    fut = panel.send("write a long story about a robot that learns to paint")
    turn = panel._turn_obj
    next(p for p in turn if isinstance(p, TextDelta) and p.content)  # blocks until the first token
    assert not fut.done(), "the answer finished before it could be stopped"
    panel.stop()
    assert panel.wait(30)
    assert fut.cancelled() and panel.status_state == "stopped" and panel.response is None
    assert turn.wait(30).stopped  # the turn itself ended: nothing can arrive after Stop
    assert list(turn) == turn.parts  # and what it produced is all there is
    llm_run = studio_pipe["llm_inference"].last[-1]
    assert isinstance(llm_run.error, asyncio.CancelledError)  # generation itself was cancelled
    assert "panel-stop" not in [s.session_id for s in studio_pipe.memory.sessions("local")]  # no turn saved
    # the model slot was released: the next question is answered
    assert panel.send("hi").result(timeout=300).text.strip()


def test_session_switch_and_clear(studio_pipe: Any) -> None:
    panel = ChatPanel(studio_pipe, session="panel-a")
    panel.send("hello").result(timeout=300)
    assert "panel-a" in panel.refresh_sessions()

    panel.session_picker.value = "panel-b"
    assert panel.session == "panel-b" and panel.text == "" and "0 earlier turn(s)" in panel.status.value
    panel.send("what is a ParallelGroup?").result(timeout=300)
    assert [t.question for t in studio_pipe.memory.history("panel-b")] == ["what is a ParallelGroup?"]
    assert {"panel-a", "panel-b"} <= set(panel.session_picker.options)

    panel.session_picker.value = "panel-a"
    assert "1 earlier turn(s)" in panel.status.value

    assert panel.clear() == 1
    assert panel.answer.value == "" and "cleared 1 turn(s) of session panel-a" in panel.status.value
    sessions = [s.session_id for s in studio_pipe.memory.sessions("local")]
    assert "panel-a" not in sessions and "panel-b" in sessions


def test_empty_question_is_refused() -> None:
    panel = ChatPanel()  # the check comes before any pipeline is created
    with pytest.raises(ConfigError):
        panel.send("   ")
    assert not panel.busy


def test_clear_only_touches_the_panels_own_users_session(studio_pipe: Any) -> None:
    """Issue #11 F6: Clear uses the one ownership rule; another user's session looks empty."""
    alice = ChatPanel(studio_pipe, session="panel-owned", user="alice")
    alice.send("remember the heron").result(timeout=300)
    bob = ChatPanel(studio_pipe, session="panel-owned", user="bob")
    assert bob.clear() == 0 and "cleared 0 turn(s)" in bob.status.value
    assert len(studio_pipe.memory.history("panel-owned", user="alice")) == 1
    assert alice.clear() == 1
