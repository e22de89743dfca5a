"""What a front end knows about one turn while it streams: text so far, steps, result.

The magic and the panel both feed every item of ``StudioPipeline.stream/astream`` into a
``TurnState`` and render from it, so they agree on what a restart, a step or the final
Response means. ``Throttle`` limits how often a display is redrawn (tokens can arrive
far faster than a browser can repaint).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from html import escape
from typing import Any


@dataclass
class Step:
    operator: str
    status: str
    duration_ms: float | None = None


@dataclass
class TurnState:
    text: str = ""
    steps: dict[str, Step] = field(default_factory=dict)
    response: Any = None
    deltas: int = 0
    restarts: int = 0

    def feed(self, item: Any) -> str:
        """Take one stream item; returns its kind: ``"text"``, ``"step"``, ``"response"``."""
        from studio_nb.kernel.events import StepEvent
        from studio_nb.messages import Response, TextDelta

        if isinstance(item, TextDelta):
            if item.restart:
                self.text = ""
                self.restarts += 1
            self.text += item.content
            self.deltas += 1
            return "text"
        if isinstance(item, StepEvent):
            step = self.steps.setdefault(item.operator, Step(item.operator, item.status))
            step.status = item.status
            if item.duration_ms is not None:
                step.duration_ms = item.duration_ms
            return "step"
        if isinstance(item, Response):
            self.response = item
            self.text = item.text
            for op, ms in item.timings.items():
                self.steps.setdefault(op, Step(op, "completed", ms))
            return "response"
        return "other"

    # ------------------------------------------------------------------ renderings
    def trace_markdown(self) -> str:
        if not self.steps:
            return ""
        rows = [f"| {s.operator} | {s.status} | {_ms(s.duration_ms)} |" for s in self.steps.values()]
        return "| operator | status | took |\n|---|---|---:|\n" + "\n".join(rows)

    def trace_html(self) -> str:
        rows = "".join(
            f"<tr><td><code>{escape(s.operator)}</code></td><td class='studio-{escape(s.status)}'>"
            f"{escape(s.status)}</td><td style='text-align:right'>{_ms(s.duration_ms)}</td></tr>"
            for s in self.steps.values()
        )
        head = "<tr><th>operator</th><th>status</th><th>took</th></tr>"
        return f"<table class='studio-trace' style='font-size:12px;line-height:1.2'>{head}{rows}</table>"

    def sources_html(self) -> str:
        resp = self.response
        if resp is None or not resp.sources:
            return ""
        items = "".join(
            f"<li><code>{escape(s.ref)}</code> <small>({s.score:.3f})</small></li>" for s in resp.sources
        )
        return f"<b>Sources</b><ol>{items}</ol>"


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.0f} ms"


class Throttle:
    """``ready()`` is true at most ``per_second`` times a second (always true at first)."""

    def __init__(self, per_second: float = 10.0) -> None:
        self.interval = 1.0 / per_second if per_second > 0 else 0.0
        self._last = float("-inf")

    def ready(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            return True
        return False
