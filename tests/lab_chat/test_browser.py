"""Studio in JupyterLab's chat sidebar, as a user meets it: a real JupyterLab (the `make run`
set-up: the Studio extension and jupyterlab-chat, the bundled model) driven by Playwright
and the system's Chromium.

alice opens the chat sidebar, creates a chat, /learns a folder of her workspace, asks the
README's question and sees the evidence then the checked synthesis; she clicks a citation
and lands in the cited file (a Markdown file on the cited section, a Python file on the
cited line); she attaches a notebook with the paperclip and sees its cell cited; she stops
a long answer. Screenshots go to test-artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import os
import re
from typing import Any, Iterator

import pytest

from tests.jupyter.server_proc import REPO, JupyterServerProcess
from tests.lab_chat.conftest import ZEBRA_LINE, chat_server_process

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = REPO / "test-artifacts"
QUESTION = "SAGE 的 LocalEnvironment 和 RemoteEnvironment 有什么区别？"
ANSWERED = "<sub>"  # the timings line: the last part of a finished answer


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServerProcess]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium chromium-driver (make system-deps)")
    srv = chat_server_process(tmp_path_factory.mktemp("lab-chat-browser"), {"max_tokens": 400}, lab=True)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def page(lab: JupyterServerProcess) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            pg = browser.new_page(viewport={"width": 1500, "height": 950})
            pg.set_default_timeout(60_000)
            pg.goto(f"{lab.url}lab?token=alice-token")
            open_new_chat(pg)
            yield pg
        finally:
            browser.close()


def open_new_chat(page: Any) -> None:
    """The chat sidebar (left), a new chat in it, moved to the main area to read it."""
    tab = page.wait_for_selector('.jp-SideBar .lm-TabBar-tab[data-id="JupyterlabChat:sidepanel"]', timeout=120_000)
    tab.click()
    page.click(".jp-chat-placeholder-hint jp-button.jp-chat-add")
    page.wait_for_selector("textarea")


#: the chat in JupyterLab's main area (a .chat file opened there), not the one in the sidebar
MAIN = "#jp-main-dock-panel "


#: per page: how many chat messages were on it once the last question was shown (the question included)
_SENT: dict[int, int] = {}


def say(page: Any, text: str, within: str = "") -> None:
    """Send ``text`` and wait until the question is on the page, so that an answer is looked for
    only after it (the previous answer's timings line must not count as this one's)."""
    messages = page.locator(within + ".jp-chat-message")
    before = messages.count()
    box = page.locator(within + "textarea").first
    box.click()
    box.fill(text)
    page.keyboard.press("Enter")
    page.wait_for_function("([within, n]) => document.querySelectorAll(within + '.jp-chat-message').length > n",
                           arg=[within, before], timeout=60_000, polling=100)
    _SENT[id(page)] = before + 1  # the question's own message; the answer may already be there too


def last_answer(page: Any) -> Any:
    return page.locator(".jp-chat-message").last


def wait_answer(page: Any, containing: str, timeout_s: float = 420, within: str = "") -> str:
    """The text of the last Studio message after the last question, once it contains ``containing``."""
    try:
        page.wait_for_function(
            """([needle, within, sent]) => { const ms = [...document.querySelectorAll(within + '.jp-chat-message')];
                             const m = ms[ms.length - 1]; return ms.length > sent && m.innerHTML.includes(needle); }""",
            arg=[containing, within, _SENT.get(id(page), 0)], timeout=timeout_s * 1000, polling=250)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "lab_chat_failed.png"))  # what the user saw instead
        raise
    return page.locator(within + ".jp-chat-message").last.inner_text()


def accept_run_command(page: Any) -> None:
    """JupyterLab asks before running a command from untrusted content (the chat message)."""
    dialog = page.wait_for_selector(".jp-Dialog")
    assert "rendermime:handle-local-link" in dialog.inner_text()
    page.click(".jp-Dialog button.jp-mod-accept")


def test_learn_then_ask_shows_evidence_and_opens_the_cited_section(page: Any) -> None:
    say(page, "@Studio /learn docs")
    text = wait_answer(page, "Learned")
    assert "private to you" in text
    say(page, f"@Studio {QUESTION}")
    page.wait_for_function(  # the evidence is there before the answer is finished
        """() => { const m = [...document.querySelectorAll('.jp-chat-message')].pop();
                   return m && m.innerText.includes('environments.md:L'); }""", timeout=600_000, polling=100)
    streaming = last_answer(page).inner_html()
    text = wait_answer(page, ANSWERED)
    assert ANSWERED not in streaming or "依据" in streaming
    assert "依据" in text and "docs/environments.md:L" in text
    page.screenshot(path=str(ARTIFACTS / "lab_chat_answer.png"))
    remote = last_answer(page).locator("button.studio-cite", has_text="environments.md").first
    args = remote.get_attribute("data-commandlinker-args")
    assert args and '"alice/docs/environments.md"' in args  # the sanitizer kept the command linker
    section = re.search(r'"id": "#([^"]+)"', args).group(1)
    remote.click()
    accept_run_command(page)
    # JupyterLab names a heading by id, or data-jupyter-id when its sanitizer keeps no ids
    heading = page.wait_for_selector(f".jp-MarkdownViewer :is([id='{section}'], [data-jupyter-id='{section}'])")
    page.wait_for_function(  # scrolled to the section: its heading is at the top of the viewer
        """(id) => { const v = document.querySelector('.jp-MarkdownViewer'); const h = v.querySelector(`[id='${id}'], [data-jupyter-id='${id}']`);
                     if (!h) return false; const top = h.getBoundingClientRect().top - v.getBoundingClientRect().top;
                     return top >= -5 && top < 150; }""", arg=section, timeout=30_000)
    assert heading.is_visible()
    page.screenshot(path=str(ARTIFACTS / "lab_chat_citation_markdown.png"))


def test_code_citation_lands_on_the_cited_line(page: Any) -> None:
    say(page, "@Studio how does build_zebra_pipeline double the striped packets?")
    wait_answer(page, ANSWERED)
    cite = last_answer(page).locator("button.studio-cite", has_text="zebra_pipeline.py").first
    label = cite.inner_text()
    cite.click()
    accept_run_command(page)
    line = int(re.search(r"zebra_pipeline\.py:(\d+)", label).group(1))
    page.wait_for_selector(".jp-FileEditor .cm-content")
    page.wait_for_function(  # the editor's cursor is on the cited line (the status bar's "Ln N, Col 1")
        "(n) => (document.querySelector('#jp-main-statusbar')?.textContent || '').includes(`Ln ${n}, Col 1`)",
        arg=line, timeout=30_000)
    source = page.inner_text(".jp-FileEditor .cm-content")
    assert "build_zebra_pipeline" in source
    assert ZEBRA_LINE - 1 <= line <= ZEBRA_LINE + 8
    page.screenshot(path=str(ARTIFACTS / "lab_chat_citation_code.png"))


def test_attach_a_notebook_and_see_its_cell_cited(page: Any) -> None:
    page.click("button.jp-chat-attach-button")
    dialog = page.wait_for_selector(".jp-Dialog")
    dialog.wait_for_selector(".jp-DirListing-item[title*='alice'], .jp-DirListing-item:has-text('alice')")
    page.dblclick(".jp-Dialog .jp-DirListing-item:has-text('alice')")
    page.click(".jp-Dialog .jp-DirListing-item:has-text('nb.ipynb')")
    page.click(".jp-Dialog button.jp-mod-accept")
    page.wait_for_selector(".jp-chat-attachment:has-text('nb.ipynb'), [class*=attachment]:has-text('nb.ipynb')")
    say(page, "@Studio what does the total in this notebook add up?")
    text = wait_answer(page, ANSWERED)
    assert "nb.ipynb:C3" in text and "total = sum(range(10))" in text
    page.screenshot(path=str(ARTIFACTS / "lab_chat_attachment.png"))


def test_stop_a_long_answer(page: Any) -> None:
    say(page, "@Studio /mode generative")
    wait_answer(page, "now answers in <code>generative")
    say(page, "@Studio Write a very long essay about dataflow pipelines, operators and streams.")
    page.wait_for_function(  # the answer is being written
        """() => { const m = [...document.querySelectorAll('.jp-chat-message')].pop();
                   return m && !m.innerText.includes('looking for evidence') && m.innerText.length > 40; }""",
        timeout=600_000, polling=100)
    say(page, "@Studio /stop")
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-chat-message')].some(m => m.innerText.includes('Stopped the answer'))",
        timeout=60_000)
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-chat-message')].some(m => m.innerText.includes('(stopped)'))",
        timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "lab_chat_stopped.png"))
    say(page, "@Studio /mode grounded")
    wait_answer(page, "now answers in <code>grounded")


FINISHED = """(within) => [...document.querySelectorAll(within + '.jp-chat-message')]
                            .filter(m => m.innerHTML.includes('<sub>'))"""


def answers(page: Any) -> list[str]:
    """The text of every finished Studio answer in the main-area chat, oldest first."""
    return page.evaluate(f"(w) => ({FINISHED})(w).map(m => m.innerText)", MAIN)


def ask_and_wait(page: Any, text: str) -> str:
    """Send ``text`` in the main-area chat and return the next finished answer that appears."""
    before = len(answers(page))
    say(page, text, MAIN)
    page.wait_for_function(f"([w, n]) => ({FINISHED})(w).length > n", arg=[MAIN, before], timeout=420_000,
                           polling=250)
    return answers(page)[before]


def test_two_users_in_one_shared_chat_each_see_only_their_private_domains(lab: JupyterServerProcess, page: Any) -> None:
    (lab.workdir / "root" / "team.chat").write_text("{}")
    contexts = []
    try:
        pages = {}
        for user in ("alice", "bob"):  # two logins: two browser contexts, two cookies
            ctx = page.context.browser.new_context(viewport={"width": 1100, "height": 900})
            contexts.append(ctx)
            pg = ctx.new_page()
            pg.set_default_timeout(60_000)
            pg.goto(f"{lab.url}lab/tree/team.chat?token={user}-token")
            pg.wait_for_selector(MAIN + "textarea", timeout=120_000)
            pages[user] = pg
        alice, bob = pages["alice"], pages["bob"]
        say(alice, "@Studio /learn secret", MAIN)
        wait_answer(alice, "Learned", within=MAIN)
        say(bob, "@Studio /learn secret --domain bob_secret", MAIN)
        wait_answer(bob, "bob_secret", within=MAIN)
        question = "@Studio which day is the quarterly llama report shipped?"
        mine = ask_and_wait(alice, question)
        assert "heron.md" in mine and "otter" not in mine.lower()
        bob.wait_for_function(  # bob sees alice's answer too: it is a shared chat
            f"([w, n]) => ({FINISHED})(w).length >= n", arg=[MAIN, len(answers(alice))])
        theirs = ask_and_wait(bob, question)
        assert "otter.md" in theirs and "heron" not in theirs.lower()
        bob.screenshot(path=str(ARTIFACTS / "lab_chat_shared_bob.png"))
        alice.screenshot(path=str(ARTIFACTS / "lab_chat_shared_alice.png"))
    finally:
        for ctx in contexts:
            ctx.close()
