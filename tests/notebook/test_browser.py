"""Notebook 05 in a real JupyterLab, in headless Chromium: the panel streams in the browser.

Runs every cell of ``notebooks/05_chat_panel.ipynb`` (real pipeline, real model), then
types a question into the rendered panel, clicks Send, and records each redraw of the
answer in the page. A screenshot goes to ``test-artifacts/notebook_panel.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.notebook.lab import CHROMIUM, REPO_ROOT, cell_errors, chromium_page, jupyter_lab, run_all_cells

pytestmark = pytest.mark.slow

NOTEBOOK = REPO_ROOT / "notebooks" / "05_chat_panel.ipynb"
SCREENSHOT = REPO_ROOT / "test-artifacts" / "notebook_panel.png"
QUESTION = "How do I switch a branch off?"

RECORD_ANSWERS = """() => {
    window.__studioAnswers = [];
    const panel = document.querySelector('.studio-chat-panel');
    new MutationObserver(() => {
        const answer = panel.querySelector('.studio-answer');
        if (answer) window.__studioAnswers.push(answer.textContent);
    }).observe(panel, {subtree: true, childList: true, characterData: true});
}"""


def test_panel_streams_in_jupyterlab(tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with jupyter_lab(tmp_path, [NOTEBOOK]) as lab, chromium_page() as page:
        page.goto(lab.notebook_url(NOTEBOOK.name))
        run_all_cells(page, timeout_s=900)
        assert cell_errors(page) == []

        panels = page.locator(".studio-chat-panel")
        assert panels.count() == 1
        panel = panels.first
        panel.scroll_into_view_if_needed()
        # the notebook's own cells drove the panel: Clear was the last action
        assert panel.locator(".studio-status").get_attribute("data-state") == "ready"

        page.evaluate(RECORD_ANSWERS)
        panel.locator("textarea").fill(QUESTION)
        panel.locator("button:has-text('Send')").click()
        page.wait_for_selector(".studio-chat-panel .studio-status[data-state='thinking']", timeout=30_000)
        page.wait_for_selector(".studio-chat-panel .studio-status[data-state='done']", timeout=600_000)

        answers = [a for a in page.evaluate("window.__studioAnswers") if a.strip()]
        final = panel.locator(".studio-answer").text_content()
        assert final.strip() and not final.endswith("▌")
        partial = {a.removesuffix("▌").rstrip() for a in answers if a.endswith("▌")}
        assert len(partial) >= 2, f"the answer should arrive in pieces, saw {answers!r}"
        assert all(final.startswith(p) for p in partial)
        assert QUESTION in panel.text_content()
        assert "llm_inference" in panel.locator(".studio-trace").text_content()
        assert panel.locator("button:has-text('Send')").is_enabled()

        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
