"""Reloading the Studio page lands in the chat it showed, with that chat's history.

The page made up a new chat's id on load but remembered it only when "New chat" or a
session in the sidebar was clicked, so a reload after the first question opened another
empty chat (the question was only reachable from the sidebar). Headless Chromium against a
real ``jupyter server`` child process and the real model; the screenshot after the reload
goes to test-artifacts/studio_reload.png for a human to look at.
"""

from __future__ import annotations

import pytest

from tests.jupyter.server_proc import REPO
from tests.jupyter.test_browser import server, studio_page  # noqa: F401  (``server`` is a fixture)

pytestmark = pytest.mark.slow

QUESTION = "What is a ParallelGroup in studio-nb?"


def _wait_loaded(page) -> None:
    """After a reload: connected, graph drawn, sessions listed, the chat's history fetched."""
    page.wait_for_selector("#status[data-state=open]", timeout=30_000)
    page.wait_for_selector('svg.pipeline g.node[data-name="llm_inference"]', timeout=30_000)
    page.wait_for_load_state("networkidle")


def test_a_reload_shows_the_same_chat_and_its_question(server):  # noqa: F811
    shot = REPO / "test-artifacts" / "studio_reload.png"
    shot.parent.mkdir(exist_ok=True)
    with studio_page(server, 1400, 900) as (page, errors):
        first = page.evaluate("window.studio.state.session")  # the new chat the page opened with
        page.fill("#input", QUESTION)
        page.click("#send")
        page.wait_for_selector(".turn .answer[data-state=done]", state="attached", timeout=300_000)

        page.reload()
        _wait_loaded(page)
        page.wait_for_selector(".turn .question", timeout=30_000)
        page.wait_for_selector("#sessions li.active", timeout=30_000)
        after_reload = page.evaluate("window.studio.state.session")
        questions = page.locator(".turn .question").all_inner_texts()
        answers = page.locator(".turn .answer").all_inner_texts()
        active = page.locator("#sessions li.active").get_attribute("data-sid")
        notices = page.locator(".notice").all_inner_texts()
        page.screenshot(path=str(shot), full_page=True)

        # "New chat", then a reload: the new (still empty) chat, not the one before it
        page.click("#new-session")
        fresh = page.evaluate("window.studio.state.session")
        page.reload()
        _wait_loaded(page)
        after_new = page.evaluate("window.studio.state.session")
        turns_after_new = page.locator(".turn").count()
    assert not errors, errors
    stored = {s["session_id"]: s["turns"] for s in server.get("studio/api/sessions")["sessions"]}
    assert stored == {first: 1}  # the page's first chat is the one the server keeps
    assert after_reload == first and active == first
    assert questions == [QUESTION] and answers[0].strip()
    assert notices == []
    assert fresh != first and after_new == fresh and turns_after_new == 0
    assert shot.stat().st_size > 10_000
