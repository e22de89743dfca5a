"""A fenced code block in the ChatPanel's synthesis is shown as code, not as ``` lines.

The panel showed the synthesis as escaped text, so the fences a model writes around code
stood on the screen as literal ``` lines. The panel is driven headless against the real
pipeline (retrieval, evidence, the grounding check, memory) with a scripted model that
writes a fenced block: what is tested is how the panel renders one, and whether the
bundled model writes a fence depends on the evidence of the day (CI once saw it answer in
prose). Then the panel's HTML is opened in headless Chromium to check what a reader sees;
the screenshot goes to test-artifacts/panel_code_block.png.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from studio_nb.notebook import ChatPanel
from studio_nb.present import _CODE_STYLE, text_html
from tests.jupyter.server_proc import REPO

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
QUESTION = "Write Python code that creates a studio pipeline with create_studio_pipeline and asks a question"
CODE = 'pipe = create_studio_pipeline()\nprint(pipe.chat("what is a ParallelGroup?").text if 1 < 2 else "")'
REPLY = f"Create the pipeline, then ask:\n\n```python\n{CODE}\n```"


@pytest.fixture
def scripted_pipe(scripted_studio: Any) -> Any:
    """The Studio pipeline with a model that always writes REPLY (generative mode: no evidence check)."""
    return scripted_studio(REPLY, answer_mode="generative")


def test_a_code_block_in_the_synthesis_is_rendered_as_code(scripted_pipe: Any) -> None:
    from playwright.sync_api import sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    panel = ChatPanel(scripted_pipe, session="panel-code")
    resp = panel.send(QUESTION).result(timeout=300)
    assert "```python" in resp.synthesis, resp.synthesis
    code = CODE
    shot = REPO / "test-artifacts" / "panel_code_block.png"
    shot.parent.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 900, "height": 500})
            page.set_content(f"<html><body style='font-family:sans-serif'>{panel.answer.value}</body></html>")
            seen = page.evaluate("""() => {
                const s = document.querySelector('.studio-synthesis');
                const c = s.querySelector('pre > code');
                return {text: s.innerText, code: c && c.textContent, lang: c && c.className,
                        scripts: document.querySelectorAll('script').length};
            }""")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert seen["code"] is not None, panel.answer.value
    assert seen["code"].strip() == code  # the model's code, verbatim (escaped '<' shown as '<')
    assert seen["lang"] == "language-python"
    assert "```" not in seen["text"]  # no fence line is left on the screen
    assert QUESTION in panel.answer.value and panel.status_state == "done"
    assert shot.stat().st_size > 5_000


def _pre(code: str, lang: str = "") -> str:
    cls = f" class='language-{lang}'" if lang else ""
    return f"<pre class='studio-code' style='{_CODE_STYLE}'><code{cls}>{code}</code></pre>"


@pytest.mark.parametrize(
    "text, html",
    [
        ("Use:\n```python\nx = 1 < 2\n```\nDone.", "Use:" + _pre("x = 1 &lt; 2", "python") + "Done."),
        ("streaming\n```\nprint('<b>')", "streaming" + _pre("print(&#x27;&lt;b&gt;&#x27;)")),
        ("inline ``` is text, <i>escaped</i>", "inline ``` is text, &lt;i&gt;escaped&lt;/i&gt;"),
        ("~~~~\na\n~~~\nb\n~~~~\nafter", _pre("a\n~~~\nb") + "after"),
    ],
)
def test_text_html_renders_fences_and_escapes_everything(text: str, html: str) -> None:
    """An unclosed fence runs to the end (a streaming answer); a shorter fence does not close a longer one."""
    assert text_html(text) == html
