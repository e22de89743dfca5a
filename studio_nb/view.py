"""What is known of one turn's answer so far: the one live view every front end renders.

The Turn folds each part it produces into its ``View`` (``turn.view``) as the part
arrives, so no front end accumulates the stream itself; ``studio_nb.present`` renders a
View as Markdown, HTML, plain text or JSON at any moment. While streaming it holds the
evidence that arrived and the generated text so far (a regeneration's restart clears
it); at the end, the final Response.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


_KINDS: tuple[tuple[type, str], ...] = ()


def part_kind(part: Any) -> str:
    """"step", "evidence", "text", "response" or "other": what a Turn part is, for a
    front end deciding whether to redraw. (Called for every token: the classes are looked
    up once.)"""
    global _KINDS
    if not _KINDS:
        from studio_nb.kernel.events import StepEvent
        from studio_nb.messages import Evidence, Response, TextDelta

        _KINDS = ((TextDelta, "text"), (StepEvent, "step"), (Evidence, "evidence"), (Response, "response"))
    for cls, kind in _KINDS:
        if isinstance(part, cls):
            return kind
    return "other"


@dataclass
class Step:
    """One operator's latest status in this turn."""

    operator: str
    status: str
    duration_ms: float | None = None


@dataclass
class View:
    """What is known of a turn so far (see the module docstring)."""

    question: str = ""
    evidence: Any = None  # messages.Evidence
    text: str = ""  # generated text so far (a retry's restart clears it)
    steps: dict[str, Step] = field(default_factory=dict)
    response: Any = None  # messages.Response, once the turn is done
    restarts: int = 0
    deltas: int = 0
    note: str | None = None  # "stopped", "error: <code>" once the turn ended without an answer

    @classmethod
    def of(cls, turn_or_parts: Any, question: str = "") -> "View":
        """A Turn's own view, or a new one folded from a list of parts."""
        if isinstance(getattr(turn_or_parts, "view", None), View):
            return turn_or_parts.view
        view = cls(question=question)
        for part in turn_or_parts:
            view.add(part)
        return view

    def add(self, part: Any) -> str:
        """Fold one part in; returns its kind (``part_kind``)."""
        kind = part_kind(part)
        if kind == "text":
            if part.restart:
                self.text, self.restarts = "", self.restarts + 1
            self.text += part.content
            self.deltas += 1
        elif kind == "step":
            step = self.steps.setdefault(part.operator, Step(part.operator, part.status))
            step.status = part.status
            if part.duration_ms is not None:
                step.duration_ms = part.duration_ms
        elif kind == "evidence":
            self.evidence = part
        elif kind == "response":
            self.response = part
            self.evidence = part.evidence if part.evidence is not None else self.evidence
            for op, ms in part.timings.items():
                self.steps.setdefault(op, Step(op, "completed", ms))
        return kind

    @property
    def done(self) -> bool:
        return self.response is not None

    @property
    def answer_text(self) -> str:
        """The plain answer: the final text, or what has streamed so far."""
        if self.response is not None:
            return self.response.text
        from studio_nb.messages import compose_answer

        note = getattr(self.evidence, "note", "") or ""
        return compose_answer(self.evidence, self.text, note, self.question, refs=False)  # references come at the end


__all__ = ["Step", "View", "part_kind"]
