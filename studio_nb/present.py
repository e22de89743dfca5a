"""How a Turn looks: the one place an answer is rendered, for every front end.

A front end never re-accumulates the stream itself. The Turn keeps the one live ``View``
of its answer (``turn.view``, studio_nb/view.py); a front end iterates the turn only to
know when to redraw, and asks this module for the rendering it needs: ``markdown`` (the magic, notebooks), ``html`` (the ChatPanel), ``plain`` (the
CLI, logs), ``to_json`` (``--json``, the WebSocket ``done`` frame). A View can be rendered
at any moment: while streaming it shows the evidence that arrived and the text so far;
at the end it shows the final Response — evidence with its citations, the checked
synthesis, and a visible mark for every generated sentence that was dropped.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any, Iterable

from studio_nb.language import is_chinese
from studio_nb.view import Step, View, part_kind  # noqa: F401  (re-exported: front ends render these)

CURSOR = "▌"


def _view(obj: Any) -> View:
    from studio_nb.messages import Response

    if isinstance(obj, View):
        return obj
    if isinstance(getattr(obj, "view", None), View):  # a Turn: its one live view
        return obj.view
    if isinstance(obj, Response):
        view = View(question=obj.question)
        view.add(obj)
        return view
    return View.of(obj)


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} ms"


def _zh(view: View) -> bool:
    return is_chinese(view.question or getattr(view.response, "question", ""))


# ---------------------------------------------------------------------- Markdown
def markdown(obj: Any, *, steps: bool = False, timings: bool = True) -> str:
    """The turn as Markdown: evidence, synthesis, dropped sentences, sources, (the steps)."""
    view = _view(obj)
    resp, zh = view.response, _zh(view)
    out: list[str] = []
    ev = view.evidence
    if ev is not None and ev.pieces:
        lines = []
        for p in ev.pieces:
            body = p.text.strip()
            if "\n" in body and p.kind != "tool":
                lines.append(f"**[{p.n}]** `{p.ref}`\n```\n{body}\n```")
            else:
                ref = "" if p.kind == "tool" else f" — `{p.ref}`"
                lines.append(f"**[{p.n}]** {body}{ref}")
        out.append(("**依据**" if zh else "**Evidence**") + "\n\n" + "\n\n".join(lines))
    if ev is not None and ev.note and not ev.pieces:
        out.append(f"_{ev.note}_")
    synthesis = resp.synthesis if resp is not None else view.text
    if synthesis or resp is None:
        label = ("**回答**" if zh else "**Answer**") if ev is not None and ev.pieces else ""
        cursor = "" if resp is not None else (f"\n\n_({view.note})_" if view.note else f" {CURSOR}")
        if synthesis or cursor.strip():
            sep = "\n" if synthesis.startswith("```") else " "  # a code block opens on its own line
            out.append(f"{label}{sep}{synthesis}{cursor}".strip())
    if resp is not None:
        for d in resp.dropped:
            out.append(f"> ⚠ {'已删除，无依据' if zh else 'dropped as unsupported'}: ~~{d.text.strip()}~~ _({d.reason})_")
        if resp.note and not (ev is not None and ev.note == resp.note and not ev.pieces):
            out.append(f"_{resp.note}_")
        if resp.tool_calls:
            calls = [
                f"- `{t.name}({', '.join(f'{k}={v!r}' for k, v in t.arguments.items())})`"
                + (f" → error: {t.error}" if t.error else "")
                for t in resp.tool_calls
            ]
            out.append("**Tools**\n\n" + "\n".join(calls))
        if resp.sources:
            lines = [f"{i}. `{s.citation.titled}` (score {s.score:.3f})" for i, s in enumerate(resp.sources, 1)]
            out.append("<details><summary>Sources searched</summary>\n\n" + "\n".join(lines) + "\n\n</details>")
        if timings and resp.timings:
            cells = ", ".join(f"{k} {v:.0f} ms" for k, v in resp.timings.items())
            out.append(f"<sub>{resp.mode} · intent {resp.intent} · {cells}</sub>")
    if steps and view.steps:
        rows = [f"| {s.operator} | {s.status} | {_ms(s.duration_ms)} |" for s in view.steps.values()]
        out.append("| operator | status | took |\n|---|---|---:|\n" + "\n".join(rows))
    return "\n\n".join(out) or "_(empty answer)_"


# ---------------------------------------------------------------------- HTML
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)\s*$")  # the Studio page's rule (markdown.js)
_CODE_STYLE = "background:rgba(127,127,127,.12);padding:4px 8px;margin:4px 0;overflow-x:auto"


def text_html(text: str) -> str:
    """``text`` escaped, with its fenced code blocks as ``<pre><code>``.

    A synthesis is Markdown; shown as plain text, a code block in it was literal ```
    lines around code. Only fences are rendered (the rest stays escaped text), and an
    unclosed fence (still streaming, or cut off) runs to the end, as on the Studio page.
    """
    out: list[str] = []
    lines: list[str] = []  # the prose run or the code block being read
    fence = lang = ""

    def flush() -> None:
        if fence:
            cls = f" class='language-{escape(lang)}'" if lang else ""
            body = escape("\n".join(lines))
            out.append(f"<pre class='studio-code' style='{_CODE_STYLE}'><code{cls}>{body}</code></pre>")
        elif "".join(lines).strip():
            out.append(escape("\n".join(lines).strip("\n")))
        lines.clear()

    for line in text.split("\n"):
        if fence and line.strip().startswith(fence):
            flush()
            fence = lang = ""
        elif not fence and (m := _FENCE.match(line)):
            flush()
            fence, lang = m.groups()
        else:
            lines.append(line)
    flush()
    return "".join(out)


def html(obj: Any, *, steps: bool = False) -> str:
    """The turn as safe HTML (every text escaped), for widgets."""
    view = _view(obj)
    resp, zh = view.response, _zh(view)
    out: list[str] = []
    ev = view.evidence
    if ev is not None and ev.pieces:
        items = "".join(
            f"<li value='{p.n}'><span class='studio-evidence-text'>{escape(p.text)}</span>"
            + ("" if p.kind == "tool" else f" <code class='studio-ref'>{escape(p.ref)}</code>")
            + "</li>"
            for p in ev.pieces
        )
        out.append(f"<div class='studio-evidence'><b>{'依据' if zh else 'Evidence'}</b><ol>{items}</ol></div>")
    elif ev is not None and ev.note:
        out.append(f"<div class='studio-note'><i>{escape(ev.note)}</i></div>")
    synthesis = resp.synthesis if resp is not None else view.text
    cursor = "" if resp is not None else (f" <i>({escape(view.note)})</i>" if view.note else CURSOR)
    if synthesis or cursor:
        out.append(f"<div class='studio-synthesis' style='white-space:pre-wrap'>{text_html(synthesis)}{cursor}</div>")
    if resp is not None:
        for d in resp.dropped:
            out.append(
                f"<div class='studio-dropped' title='{escape(d.reason)}'>⚠ "
                f"{'已删除，无依据' if zh else 'dropped as unsupported'}: <del>{escape(d.text)}</del> "
                f"<small>({escape(d.reason)})</small></div>"
            )
        if resp.note and not (ev is not None and ev.note == resp.note and not ev.pieces):
            out.append(f"<div class='studio-note'><i>{escape(resp.note)}</i></div>")
    if steps:
        out.append(steps_html(view))
    return "".join(out)


def steps_html(obj: Any) -> str:
    """The per-operator steps (status and duration) as an HTML table ("" before any step)."""
    view = _view(obj)
    if not view.steps:
        return ""
    rows = "".join(
        f"<tr><td><code>{escape(s.operator)}</code></td><td class='studio-{escape(s.status)}'>"
        f"{escape(s.status)}</td><td style='text-align:right'>{_ms(s.duration_ms)}</td></tr>"
        for s in view.steps.values()
    )
    return (
        "<table class='studio-trace' style='font-size:12px;line-height:1.2'>"
        f"<tr><th>operator</th><th>status</th><th>took</th></tr>{rows}</table>"
    )


def sources_html(obj: Any) -> str:
    """The retrieved chunks the answer drew on, as an HTML list (empty before the end)."""
    resp = _view(obj).response
    if resp is None or not resp.sources:
        return ""
    items = "".join(f"<li><code>{escape(s.citation.titled)}</code> <small>({s.score:.3f})</small></li>"
                    for s in resp.sources)
    return f"<b>Sources</b><ol>{items}</ol>"


# ---------------------------------------------------------------------- plain text
def plain(obj: Any, *, sources: bool = True, passages: bool = True) -> str:
    """The turn as plain text: the answer, marks for dropped sentences, the sources searched.

    ``passages=False``: what follows the evidence, for a terminal that printed the
    evidence (``plain(turn.view)`` while streaming) when it arrived."""
    view = _view(obj)
    resp = view.response
    if resp is None:
        return view.answer_text + (f"\n({view.note})" if view.note else CURSOR)
    if passages:
        text = resp.text
    else:
        from studio_nb.messages import compose_answer

        text = compose_answer(resp.evidence, resp.synthesis, resp.note, resp.question, passages=False)
    for d in resp.dropped:
        text += f"\n[dropped as unsupported: {d.text.strip()} — {d.reason}]"
    if sources and resp.sources and not (resp.evidence and resp.evidence.pieces):
        text += "\n\nSources:\n" + "\n".join(f"  [{i}] {s.citation.titled}" for i, s in enumerate(resp.sources, 1))
    return text if passages else text.strip("\n")


def details_text(obj: Any) -> str:
    """How the answer was made, for ``--verbose``: tools, intent, mode, tokens, timings."""
    resp = _view(obj).response
    if resp is None:
        return ""
    lines = []
    if resp.tool_calls:
        lines += ["Tools:"] + [f"  {t.name}({json.dumps(t.arguments, ensure_ascii=False)}) -> {t.error or t.result}"
                               for t in resp.tool_calls] + [""]
    lines.append(f"intent {resp.intent} (confidence {resp.confidence:.2f}), domains {list(resp.domains)}, "
                 f"mode {resp.mode}")
    lines.append(f"tokens: prompt {resp.usage.prompt_tokens}, answer {resp.usage.completion_tokens}")
    lines.append("timings (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in resp.timings.items()))
    return "\n".join(lines)


def timings(obj: Any) -> dict[str, float]:
    """Milliseconds per operator that completed so far (a stopped turn's ``done`` frame)."""
    return {s.operator: s.duration_ms for s in _view(obj).steps.values()
            if s.status == "completed" and s.duration_ms is not None}


def steps_text(obj: Any) -> str:
    view = _view(obj)
    return "\n".join(
        f"  {s.operator:<20} {s.status:<10} {_ms(s.duration_ms)}" for s in view.steps.values()
    )


# ---------------------------------------------------------------------- JSON
def to_json(obj: Any) -> dict[str, Any]:
    """The turn as a JSON-able dict: the Response's fields plus timing of the turn itself."""
    view = _view(obj)
    if view.response is None:
        data: dict[str, Any] = {"text": view.answer_text, "done": False}
        if view.evidence is not None:
            data["evidence"] = view.evidence.to_dict()
        return data
    data = view.response.to_dict()
    for key in ("first_content_s", "duration_s"):
        value = getattr(obj, key, None)
        if value is not None:
            data[key] = round(value, 4)
    return data


def mimebundle(obj: Any, *, steps: bool = False) -> dict[str, Any]:
    """Everything a notebook front end may pick from."""
    md = markdown(obj, steps=steps)
    return {"text/markdown": md, "text/plain": plain(obj)}


def jsonl(objs: Iterable[Any]) -> str:
    return "\n".join(json.dumps(to_json(o), ensure_ascii=False) for o in objs)
