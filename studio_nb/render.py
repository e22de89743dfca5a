"""Plain-text renderings shared by front ends (Markdown for notebooks, the CLI's text)."""

from __future__ import annotations

from typing import Any


def response_markdown(resp: Any, *, timings: bool = True) -> str:
    """A Response as Markdown: the answer, numbered sources, then per-operator timings."""
    parts = [resp.text.strip() or "_(empty answer)_"]
    if resp.sources:
        lines = [f"{i}. `{s.ref}` (score {s.score:.3f})" for i, s in enumerate(resp.sources, 1)]
        parts.append("**Sources**\n\n" + "\n".join(lines))
    if resp.tool_calls:
        lines = [
            f"- `{t.name}({', '.join(f'{k}={v!r}' for k, v in t.arguments.items())})` → "
            + (f"error: {t.error}" if t.error else f"`{t.result!r}`")
            for t in resp.tool_calls
        ]
        parts.append("**Tools**\n\n" + "\n".join(lines))
    if timings and resp.timings:
        cells = ", ".join(f"{k} {v:.0f} ms" for k, v in resp.timings.items())
        parts.append(f"<sub>intent {resp.intent} · {cells}</sub>")
    return "\n\n".join(parts)
