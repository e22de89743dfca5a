"""The Studio page in headless Chromium against a real ``jupyter server`` child process.

Asks a question and checks what a person would see: tokens arriving in several steps,
graph nodes lighting up (running -> completed) with their times, sources, no error.
Saves test-artifacts/studio_page.png for a human to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.jupyter.server_proc import REPO, JupyterServerProcess

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

RECORDER = """
() => {
  window.__seen = {lengths: [], llm: []};
  const turns = document.getElementById('turns');
  new MutationObserver(() => {
    const a = turns.querySelector('.turn:last-of-type .answer');
    if (a) window.__seen.lengths.push(a.textContent.length);
  }).observe(turns, {subtree: true, childList: true, characterData: true});
  const llm = document.querySelector('svg.pipeline g.node[data-name="llm_inference"]');
  new MutationObserver(() => window.__seen.llm.push(llm.getAttribute('data-status')))
    .observe(llm, {attributes: true, attributeFilter: ['data-status']});
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver (make system-deps)")
    work = tmp_path_factory.mktemp("studio-server")
    srv = JupyterServerProcess(work, work / "data", max_tokens=48).start()
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.stop()


def test_studio_page_streams_an_answer_and_lights_the_graph(server):
    from playwright.sync_api import sync_playwright

    shot = REPO / "test-artifacts" / "studio_page.png"
    shot.parent.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{server.url}studio/?token={server.token}")
            page.wait_for_selector("#status[data-state=open]", timeout=30_000)
            page.wait_for_selector('svg.pipeline g.node[data-name="llm_inference"]', timeout=30_000)
            assert page.locator("#toggles input[type=checkbox]").count() >= 3  # branch toggles drawn
            page.evaluate(RECORDER)
            page.fill("#input", "What is SAGE and how do I build a pipeline?")
            page.click("#send")
            page.wait_for_selector(".turn .answer[data-state=done]", timeout=300_000)
            seen = page.evaluate("window.__seen")
            answer = page.locator(".turn .answer").last.inner_text()
            steps = page.locator(".turn .trace .step[data-status=completed]").count()
            done_nodes = page.locator('svg.pipeline g.node[data-status="completed"]').count()
            llm_label = page.locator('svg.pipeline g.node[data-name="llm_inference"] .time').text_content()
            page.wait_for_timeout(300)
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert answer.strip()
    growing = sorted(set(n for n in seen["lengths"] if n > 0))
    assert len(growing) >= 3, f"the answer did not stream in pieces: {seen['lengths'][:20]}"
    assert seen["llm"][:1] == ["running"] and "completed" in seen["llm"], seen["llm"]
    assert "ms" in llm_label
    assert steps >= 5 and done_nodes >= 5
    assert shot.stat().st_size > 10_000
