"""What a person sees of a turn's trace: the parts of each message that matter, a timeline.

The kernel records raw messages; this module knows the Studio's messages and picks what
explains a step — the evidence selected, the prompt the model got, the raw text it
generated before the grounding check, the verdict. ``describe(value)`` gives those as
labelled text blocks; ``record_view`` adds a clipped JSON of the whole message for the
Studio page's inspector; ``timeline_html`` draws one row per operator with a bar for its
duration, and clicking a row (``<details>``, no script) shows its input and output.
Every text is escaped here; the page puts them into the DOM as text nodes.
"""

from __future__ import annotations

from html import escape
from typing import Any

#: clipping of the raw JSON in views (the telling parts are shown up to PART_STR; the
#: stored trace itself is not clipped this much)
VIEW_STR = 400
VIEW_DEPTH = 4
VIEW_ITEMS = 24
PART_STR = 6000

Part = tuple[str, str]  # (label, text)


def _lines(items: Any) -> str:
    return "\n".join(items)


def _prompt(messages: Any) -> str:
    return "\n\n".join(f"{m.get('role', '?')}: {m.get('content', '')}" for m in messages)


def _evidence(ev: Any) -> str:
    lines = [f"[{p.n}] {p.text}" + ("" if p.kind == "tool" else f"  — {p.ref}") for p in ev.pieces]
    return _lines(lines) or (ev.note or "(no evidence)")


def _question(turn: Any) -> str:
    """A remembered turn's question: a ``StoredTurn`` in a live trace, a mapping in one
    rebuilt from its stored JSON (the codec restores unregistered classes as mappings)."""
    if isinstance(turn, dict):
        return str(turn.get("question", ""))
    return str(getattr(turn, "question", ""))


def _sources(docs: Any) -> str:
    return _lines(f"{s.citation.titled} (score {s.score:.3f})" for s in docs)


def describe(value: Any) -> list[Part]:
    """The telling parts of one message, as (label, text) pairs; a short repr for others."""
    from studio_nb.kernel.group import Branches
    from studio_nb import messages as m

    if value is None:
        return []
    if isinstance(value, str):
        return [("text", value)]
    if isinstance(value, m.UserMessage):
        return [("question", value.content), ("session", f"{value.session_id} (user {value.user})")]
    if isinstance(value, m.RoutedMessage):
        parts = [("intent", f"{value.intent} (confidence {value.confidence:.2f})"),
                 ("domains", ", ".join(value.knowledge_domains) or "(none)"), ("question", value.content)]
        return parts + ([("keywords", ", ".join(value.matched_keywords))] if value.matched_keywords else [])
    if isinstance(value, Branches):
        rows = [f"{name}: {_short(result)}" for name, result in value.results.items()]
        rows += [f"{name}: skipped ({why})" for name, why in value.skipped.items()]
        rows += [f"{name}: failed ({why})" for name, why in value.errors.items()]
        return [("branches", _lines(rows))]
    if isinstance(value, m.MemoryContext):
        rows = [f"recent: {_question(t)}" for t in value.recent]
        rows += [f"recalled: {_question(t)}" for t in value.recalled]
        return [("memory", _lines(rows) or "(no earlier turns)")]
    if isinstance(value, tuple) and value and isinstance(value[0], m.Source):
        return [("sources", _sources(value))]
    if isinstance(value, tuple) and value and isinstance(value[0], m.ToolResult):
        return [("tools", _lines(f"{t.name}({t.arguments}) = {t.error or t.result!r}" for t in value))]
    if isinstance(value, m.Evidence):
        return [("evidence", _evidence(value))]
    if isinstance(value, m.ContextEnrichedMessage):
        parts = [("question", value.routed.content), ("intent", value.routed.intent)]
        if value.evidence is not None:
            parts.append(("evidence", _evidence(value.evidence)))
        if value.documents:
            parts.append(("sources", _sources(value.documents)))
        if value.tool_results:
            parts += describe(value.tool_results)
        if value.memory.recent or value.memory.recalled:
            parts += describe(value.memory)
        if value.degraded:
            parts.append(("degraded", _lines(f"{k}: {v}" for k, v in value.degraded)))
        return parts
    if isinstance(value, m.LLMRequest):
        settings = (f"max_tokens={value.max_tokens} temperature={value.temperature} seed={value.seed} "
                    f"attempt={value.attempt} prompt_tokens={value.prompt_tokens}")
        parts = [("prompt", _prompt(value.messages)), ("settings", settings)]
        return parts + ([("trimmed", ", ".join(value.trimmed))] if value.trimmed else [])
    if isinstance(value, m.StreamChunk):
        usage = value.usage
        tokens = f", {usage.prompt_tokens} prompt + {usage.completion_tokens} generated tokens" if usage else ""
        return [("generated text (before the grounding check)", value.text),
                ("finish", f"{value.finish_reason or 'n/a'}, attempt {value.attempt}{tokens}")]
    if isinstance(value, m.Regenerate):
        return [("regenerate", value.reason), ("rejected text", value.rejected_text)]
    if isinstance(value, m.Response):
        parts = [("answer", value.text)]
        if value.synthesis:
            parts.append(("synthesis (kept by the grounding check)", value.synthesis))
        if value.dropped:
            parts.append(("dropped", _lines(f"{d.text} — {d.reason}" for d in value.dropped)))
        if value.note:
            parts.append(("note", value.note))
        return parts + [("mode", f"{value.mode}, {value.attempts} attempt(s), intent {value.intent}")]
    return [(type(value).__name__, _short(value, 400))]


def _short(value: Any, limit: int = 160) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def value_view(value: Any) -> dict[str, Any]:
    """One message for the inspector: its type, its telling parts, and clipped JSON."""
    from studio_nb.kernel import codec

    enc = codec.Encoder(max_str=VIEW_STR, max_depth=VIEW_DEPTH, max_items=VIEW_ITEMS, shared=False)
    return {
        "type": type(value).__name__ if value is not None else None,
        "parts": [{"label": label, "text": text[:PART_STR]} for label, text in describe(value)],
        "json": enc.encode(value),
    }


def record_view(rec: Any) -> dict[str, Any]:
    """A trace record as JSON for the Studio page (REST): timings, status, input, output."""
    return {
        "operator": rec.operator, "kind": rec.kind, "group": rec.group, "visit": rec.visit,
        "attempt": rec.attempt, "status": rec.status, "reused": rec.reused,
        "duration_ms": round(rec.duration_ms, 3), "started_ms": round(rec.started_ms, 3),
        "paused_ms": round(rec.paused_ms, 3), "error": rec.error, "note": rec.note,
        "input": value_view(rec.input), "output": value_view(rec.output),
    }


# ---------------------------------------------------------------------- the timeline
_STYLE = (
    "<style>.snb-tl{font:12px var(--jp-ui-font-family,sans-serif);max-width:980px}"
    ".snb-tl summary{display:grid;grid-template-columns:170px 78px 1fr 76px;gap:6px;align-items:center;"
    "cursor:pointer;padding:1px 0}.snb-tl .bar{position:relative;height:10px;background:#eef1f5}"
    ".snb-tl .bar span{position:absolute;top:0;height:10px;background:#2f6fde;min-width:2px}"
    ".snb-tl .reused .bar span{background:#b8c2cf}.snb-tl .failed .bar span{background:#c8423b}"
    ".snb-tl .skipped .bar span{background:transparent;border-left:2px solid #9aa5b4}"
    ".snb-tl .st{color:#66758a}.snb-tl .ms{text-align:right;color:#66758a}"
    ".snb-tl pre{white-space:pre-wrap;margin:2px 0 6px;padding:4px 6px;background:#f6f8fa;max-height:24em;"
    "overflow:auto}.snb-tl .io{margin:2px 0 8px 18px}.snb-tl b.lbl{color:#456}"
    ".snb-tl .ttl{margin-top:4px;font-size:11px;text-transform:uppercase;color:#66758a}</style>"
)


def _parts_html(title: str, value: Any) -> str:
    blocks = "".join(f"<div><b class='lbl'>{escape(label)}</b></div><pre>{escape(text)}</pre>"
                     for label, text in describe(value))
    kind = "" if value is None else f" · {type(value).__name__}"
    return f"<div><div class='ttl'>{escape(title + kind)}</div>{blocks or '<small>(nothing)</small>'}</div>"


def timeline_html(trace: Any, title: str = "") -> str:
    """The trace as an HTML timeline: a row per run, a bar for its time, details on click."""
    records = list(trace)
    if not records:
        return "<i>(no operator ran)</i>"
    end = max((r.started_ms + r.duration_ms + r.paused_ms for r in records), default=1.0) or 1.0
    rows = []
    for r in records:
        left = 100.0 * r.started_ms / end
        width = 100.0 * r.duration_ms / end
        indent = "&nbsp;&nbsp;" if r.kind in ("branch", "join") else ""
        state = "reused" if r.reused else r.status
        label = f"{state}" + (f" #{r.attempt + 1}" if r.attempt else "") + (f" (visit {r.visit + 1})" if r.visit else "")
        took = "—" if r.reused else f"{r.duration_ms:.1f} ms"
        extra = ""
        if r.error or r.note:
            extra = f"<div><b class='lbl'>{'error' if r.error else 'note'}</b> {escape(r.error or r.note)}</div>"
        if r.paused_ms:
            extra += f"<div><b class='lbl'>paused</b> {r.paused_ms:.0f} ms at a breakpoint before this run</div>"
        rows.append(
            f"<details class='{escape(state)}' data-operator='{escape(r.operator)}'><summary>"
            f"<code>{indent}{escape(r.operator)}</code><span class='st'>{escape(label)}</span>"
            f"<span class='bar'><span style='left:{left:.2f}%;width:{width:.2f}%'></span></span>"
            f"<span class='ms'>{took}</span></summary><div class='io'>{extra}"
            f"{_parts_html('input', r.input)}{_parts_html('output', r.output)}</div></details>"
        )
    head = f"<div><b>{escape(title)}</b></div>" if title else ""
    return f"{_STYLE}<div class='snb-tl'>{head}{''.join(rows)}</div>"


__all__ = ["describe", "record_view", "timeline_html", "value_view"]
