"""The Studio page in headless Chromium against a real ``jupyter server`` child process.

Asks a question and checks what a person would see: tokens arriving in several steps,
graph nodes lighting up (running -> completed) with their times, sources, no error; then
the inspector (a node's input and output), a session variant and a replay side by side.
Saves test-artifacts/studio_page.png and studio_inspector.png for a human to look at.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def studio_page(server, width: int, height: int):
    """The Studio page, connected, in a fresh headless Chromium; yields (page, errors), where
    errors collects page errors and CSP violations."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(f"{server.url}studio/?token={server.token}")
            page.wait_for_selector("#status[data-state=open]", timeout=30_000)
            page.wait_for_selector('svg.pipeline g.node[data-name="llm_inference"]', timeout=30_000)
            yield page, errors
        finally:
            browser.close()


def test_studio_page_streams_an_answer_and_lights_the_graph(server):
    shot = REPO / "test-artifacts" / "studio_page.png"
    shot.parent.mkdir(exist_ok=True)
    with studio_page(server, 1400, 900) as (page, errors):
        assert page.locator("#toggles input[type=checkbox]").count() >= 3  # branch toggles drawn
        page.wait_for_load_state("networkidle")
        assert page.locator(".notice").all_inner_texts() == []  # a new chat has no history: not an error
        page.evaluate(RECORDER)
        page.fill("#input", "What is SAGE and how do I build a pipeline?")
        page.click("#send")
        # attached, not visible: when the grounding check drops the whole synthesis the answer
        # box is empty (the evidence above it and the note below it are the answer)
        page.wait_for_selector(".turn .answer[data-state=done]", state="attached", timeout=300_000)
        seen = page.evaluate("window.__seen")
        answer = page.locator(".turn").last.locator(".evidence, .answer, .dropped").all_inner_texts()
        answer = "\n".join(answer)
        cited = page.locator(".turn").last.locator(".evidence li.piece").count()
        steps = page.locator(".turn .trace .step[data-status=completed]").count()
        done_nodes = page.locator('svg.pipeline g.node[data-status="completed"]').count()
        llm_label = page.locator('svg.pipeline g.node[data-name="llm_inference"] .time').text_content()
        page.wait_for_timeout(300)
        page.screenshot(path=str(shot), full_page=True)
        # a branch switched off on the page is switched off for this chat's session only
        (sid,) = [s["session_id"] for s in server.get("studio/api/sessions")["sessions"]]  # the page's chat
        page.uncheck("#toggles input[data-name=knowledge_rag]")
        page.wait_for_function("() => { const c = document.querySelector("
                               "'#toggles input[data-name=knowledge_rag]'); return c && !c.checked && !c.disabled; }")
    assert not errors, errors

    def rag(graph):
        return next(n["enabled"] for n in graph["nodes"] if n["name"] == "knowledge_rag")

    assert server.get("studio/api/health")["runtime"]["turn_loop"] == "server"  # one loop: no thread per token
    assert rag(server.get(f"studio/api/pipeline?session_id={sid}")) is False
    assert rag(server.get("studio/api/pipeline")) is True
    assert answer.strip()
    assert cited >= 1  # the evidence the answer stands on is on the page, each passage with its source
    growing = sorted(set(n for n in seen["lengths"] if n > 0))
    assert len(growing) >= 3, f"the answer did not stream in pieces: {seen['lengths'][:20]}"
    assert seen["llm"][:1] == ["running"] and "completed" in seen["llm"], seen["llm"]
    assert "ms" in llm_label
    assert steps >= 5 and done_nodes >= 5
    assert shot.stat().st_size > 10_000


INSPECT_Q = "What is a ParallelGroup in studio-nb?"


def _part(page, side: int, label: str) -> str:
    """The text of the inspector's input (side 0) or output (side 1) part called ``label``."""
    return page.locator("#inspector .io .value").nth(side).locator(f'.part[data-label="{label}"] pre').inner_text()


def test_the_inspector_shows_what_a_node_got_and_a_replay_sits_beside_the_answer(server):
    shot = REPO / "test-artifacts" / "studio_inspector.png"
    shot.parent.mkdir(exist_ok=True)
    node = 'svg.pipeline g.node[data-name="{}"]'.format
    with studio_page(server, 1500, 1100) as (page, errors):
        page.wait_for_selector("#variants select[data-setting=answer_mode]", timeout=30_000)
        page.fill("#input", INSPECT_Q)
        page.click("#send")
        page.wait_for_selector(".turn .answer[data-state=done]", state="attached", timeout=300_000)
        page.wait_for_function("() => window.studio.state.trace !== null")
        sid = page.evaluate("window.studio.state.session")
        page.click(node("prompt_builder"))
        page.wait_for_selector('#inspector[data-node="prompt_builder"] .part[data-label="prompt"]')
        prompt = _part(page, 1, "prompt")
        page.click(node("llm_inference"))
        page.wait_for_selector('#inspector[data-node="llm_inference"] .part[data-label^="generated"]')
        generated = _part(page, 1, "generated text (before the grounding check)")
        model_input = _part(page, 0, "prompt")
        page.locator("#inspector").scroll_into_view_if_needed()
        page.screenshot(path=str(shot), full_page=True)
        # this chat answers extractively from now on; replay its last turn from the evidence
        page.select_option("#variants select[data-setting=answer_mode]", "extractive")
        page.wait_for_function("() => window.studio.state.variants.settings.some("
                               "s => s.name === 'answer_mode' && s.value === 'extractive')")
        page.click(node("evidence"))
        page.click("#inspector button.replay")
        # attached: an extractive answer is its evidence, and its answer box stays empty
        page.wait_for_selector(".turn.replay .after .answer[data-state=done]", state="attached", timeout=300_000)
        before = page.locator(".turn.replay .before .answer").inner_text()
        after = "\n".join(page.locator(".turn.replay .after").locator(".evidence, .answer, .note").all_inner_texts())
        verdict = page.locator(".turn.replay .verdict").inner_text()
        intent_status = page.locator(node("intent_router")).get_attribute("data-status")
        page.wait_for_function("() => window.studio.state.trace && window.studio.state.trace.replay_of")
        page.click(node("intent_router"))
        reused_line = page.locator("#inspector .meta[data-status]").inner_text()
        page.screenshot(path=str(shot.with_name("studio_replay.png")), full_page=True)
    assert not errors, errors
    trace = server.get(f"studio/api/sessions/{sid}/trace")  # now the replay's
    original = server.get(f"studio/api/sessions/{sid}/trace?request_id={trace['replay_of']}")
    llm = next(r for r in original["trace"]["records"] if r["operator"] == "llm_inference")
    assert generated == next(p["text"] for p in llm["output"]["parts"] if p["label"].startswith("generated"))
    assert generated.strip() and prompt.rstrip().endswith(f"Question: {INSPECT_Q}") and model_input == prompt
    answer = next(r for r in original["trace"]["records"] if r["operator"] == "stream_output")["output"]["parts"][0]
    first_line = answer["text"].split("\n")[0].replace("`", "")  # the page renders `code` as code
    assert before.split("\n")[0] == first_line  # the original answer, beside the replay's
    assert after.strip() and after != before
    assert "answer changed" in verdict and "evidence same" in verdict and "prompt none now" in verdict
    assert "reused: user_input" in verdict
    assert intent_status == "reused" and reused_line.startswith("reused from the recorded turn")
    assert [t["request_id"] for t in server.get(f"studio/api/sessions/{sid}")["turns"]] == [trace["replay_of"]]
    assert shot.stat().st_size > 10_000


def test_the_page_renders_the_turn_json_it_is_sent(server):
    """The ``done`` frame is ``present.to_json`` of the turn; the page shows each part it has
    where it belongs and nothing it lacks — it does not choose between ``synthesis`` and
    ``text`` (a page that did would show the note-only turn's note as its answer, and hide
    the note of a turn that has a synthesis)."""
    from jupyter_ext.protocol import done_frame
    from studio_nb import present
    from studio_nb.citation import Citation
    from studio_nb.messages import Dropped, Evidence, EvidencePiece, Response, Source

    cite = Citation("kernel.md", 41, 43, "The kernel > ParallelGroup", "studio_nb_docs")
    piece = EvidencePiece(1, "A ParallelGroup runs independent branches concurrently.", cite, 0.9)
    turns = {
        "t-note": Response("GENERAL_CHAT", "s", "t-note", question="summarise it", note="The summary was left out."),
        "t-all": Response("KNOWLEDGE_QUERY", "s", "t-all", question="what is a ParallelGroup?",
                          evidence=Evidence((piece,)), synthesis="It runs branches at once [1].",
                          dropped=(Dropped("It is the fastest group.", "not in the evidence"),),
                          note="One sentence was dropped.", sources=(Source(cite, 0.91),)),
    }
    with studio_page(server, 1200, 900) as (page, errors):
        shown = {}
        for rid, resp in turns.items():
            frame = done_frame(present.to_json(resp), rid)
            assert frame["text"] != frame["synthesis"]  # the whole-answer string is not what the page shows
            shown[rid] = page.evaluate(
                """([rid, question, frame]) => {
                  const turn = studio.addTurn(question);
                  turn.rid = rid;
                  studio.state.requests[rid] = turn;
                  studio.onFrame(frame);
                  const text = (sel) => [...turn.box.querySelectorAll(sel)].map(e => e.textContent.trim());
                  return {answer: text('.answer'), note: text(':scope > .note'), refs: text('.evidence code.ref'),
                          titles: [...turn.box.querySelectorAll('.evidence code.ref')].map(e => e.title),
                          dropped: text('.dropped del'), sources: text('.sources code.path'),
                          state: turn.answer.dataset.state};
                }""",
                [rid, resp.question, frame],
            )
    assert not errors, errors
    assert shown["t-note"] == {"answer": [""], "note": ["The summary was left out."], "refs": [], "titles": [],
                               "dropped": [], "sources": [], "state": "done"}
    assert shown["t-all"] == {"answer": ["It runs branches at once [1]."], "note": ["One sentence was dropped."],
                              "refs": ["studio_nb_docs/kernel.md:L41-L43"], "titles": ["The kernel > ParallelGroup"],
                              "dropped": ["It is the fastest group."], "sources": ["studio_nb_docs/kernel.md:L41-L43"],
                              "state": "done"}


HOSTILE = """# Title <script>alert(1)</script>
Text with <img src=x onerror="window.__pwned=1"> and **bold _nested_** and `code <b>`.

- [ok](https://example.org/a?b=1)
- [bad](javascript:window.__pwned=2)
- [data](data:text/html,<script>window.__pwned=3</script>)
1. see http://example.com/x.
> quoted <iframe src="https://evil.example"></iframe>

```html
<script>window.__pwned=4</script>
```
"""

ALLOWED = {"P", "H3", "H4", "H5", "H6", "UL", "OL", "LI", "PRE", "CODE", "EM", "STRONG", "BLOCKQUOTE", "BR", "A"}


def test_markdown_renderer_only_builds_safe_elements():
    from playwright.sync_api import sync_playwright

    script = (REPO / "jupyter_ext" / "static" / "markdown.js").read_text()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()
            page.set_content("<html><body><div id=out></div></body></html>")
            page.add_script_tag(content=script)
            result = page.evaluate(
                """(src) => {
                  const out = document.getElementById('out');
                  out.appendChild(StudioMarkdown.render(src));
                  return {
                    tags: [...out.querySelectorAll('*')].map(e => e.tagName),
                    hrefs: [...out.querySelectorAll('a')].map(a => a.getAttribute('href')),
                    attrs: [...out.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name)),
                    text: out.textContent, code: out.querySelector('pre code').textContent,
                    strong: out.querySelector('strong').textContent,
                    pwned: window.__pwned || 0,
                  };
                }""",
                HOSTILE,
            )
        finally:
            browser.close()
    assert set(result["tags"]) <= ALLOWED, result["tags"]
    assert {"H3", "UL", "OL", "PRE", "CODE", "STRONG", "EM", "BLOCKQUOTE", "A"} <= set(result["tags"])
    hrefs = result["hrefs"]
    assert hrefs[:2] == ["https://example.org/a?b=1", "http://example.com/x"]  # trailing '.' left out
    assert all(h.startswith(("https://", "http://")) for h in hrefs), hrefs  # no javascript:/data:
    assert set(result["attrs"]) <= {"href", "target", "rel", "class"}
    assert result["pwned"] == 0
    assert "<img src=x" in result["text"] and "<script>" in result["code"]  # shown as text, not run
    assert result["strong"] == "bold nested"
