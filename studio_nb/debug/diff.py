"""``studio_nb.diff(turn_a, turn_b)``: what changed between two turns (typically a replay).

Four things, in the order a person checks them: the evidence (passages added or gone),
the prompt the model got, the answer, and the time each operator took (``reused`` where a
replay took the recorded output). Shown as text (``print``), Markdown or HTML in a
notebook, and JSON (``to_dict``) for the Studio page.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from html import escape
from typing import Any


def _prompt_text(trace: Any) -> str | None:
    prompt = trace.prompt if trace is not None else None
    return None if prompt is None else "\n\n".join(f"{m['role']}: {m['content']}" for m in prompt)


def _evidence_texts(turn: Any) -> list[str]:
    ev = getattr(turn, "evidence", None)
    if ev is None and getattr(turn, "trace", None) is not None:
        ev = turn.trace.evidence
    return [f"[{p.n}] {p.text}" for p in ev.pieces] if ev is not None else []


def _unified(a: str | None, b: str | None) -> list[str]:
    return list(difflib.unified_diff((a or "").splitlines(), (b or "").splitlines(), "a", "b", lineterm="", n=1))


@dataclass
class TurnDiff:
    a: str  # request ids
    b: str
    replay: dict[str, Any] = field(default_factory=dict)  # what the replay changed (b's trace meta)
    evidence: dict[str, Any] = field(default_factory=dict)
    prompt: dict[str, Any] = field(default_factory=dict)
    answer: dict[str, Any] = field(default_factory=dict)
    timings: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, a: Any, b: Any) -> "TurnDiff":
        from studio_nb.kernel import codec

        t_a, t_b = a.text(), b.text()  # waits: both traces are complete after this
        ev_a, ev_b = _evidence_texts(a), _evidence_texts(b)
        p_a, p_b = _prompt_text(a.trace), _prompt_text(b.trace)
        times_a, times_b = a.trace.timings(), b.trace.timings()
        timings = []
        for op in dict.fromkeys([*times_a, *times_b]):
            ma, ra = times_a.get(op, (None, False))
            mb, rb = times_b.get(op, (None, False))
            timings.append({"operator": op, "a_ms": None if ma is None else round(ma, 2), "a_reused": ra,
                            "b_ms": None if mb is None else round(mb, 2), "b_reused": rb})
        return cls(
            a.request_id, b.request_id, replay=codec.encode(b.trace.meta, shared=False),
            evidence={"same": ev_a == ev_b, "a": ev_a, "b": ev_b,
                      "added": [e for e in ev_b if e not in ev_a], "removed": [e for e in ev_a if e not in ev_b]},
            prompt={"same": p_a == p_b, "a": p_a, "b": p_b, "diff": _unified(p_a, p_b)},
            answer={"same": t_a == t_b, "a": t_a, "b": t_b, "diff": _unified(t_a, t_b)},
            timings=timings,
        )

    # ------------------------------------------------------------------ renderings
    def _headline(self) -> str:
        what = f"{self.a} → {self.b}"
        if self.replay.get("replay_of"):
            how = [f"from {self.replay['from']}"] if self.replay.get("from") else []
            how += [f"{node} {params}" for node, params in (self.replay.get("params") or {}).items()]
            how += [f"{node} replaced by {cls}" for node, cls in (self.replay.get("replaced") or {}).items()]
            what += f" (replay of {self.replay['replay_of']}" + (": " + "; ".join(how) if how else "") + ")"
        return what

    @staticmethod
    def _ms(ms: float | None, reused: bool) -> str:
        return "reused" if reused else ("—" if ms is None else f"{ms:.1f}")

    def __str__(self) -> str:
        out = [f"Turn diff {self._headline()}"]
        ev = self.evidence
        if ev["same"]:
            out.append(f"Evidence: same ({len(ev['a'])} passages)")
        else:
            out.append("Evidence: changed")
            out += [f"  + {e}" for e in ev["added"]] + [f"  - {e}" for e in ev["removed"]]
        for name, part in (("Prompt", self.prompt), ("Answer", self.answer)):
            if part["a"] is None and part["b"] is None:
                out.append(f"{name}: none (no model ran)")
            elif part["same"]:
                out.append(f"{name}: same")
            else:
                out.append(f"{name}: changed")
                out += [f"  {line}" for line in part["diff"][2:]]
        width = max([len(t["operator"]) for t in self.timings] + [8])
        out.append(f"Timings (ms): {'':<{width - 12}} {'a':>9} {'b':>9}")
        for t in self.timings:
            out.append(f"  {t['operator']:<{width}} {self._ms(t['a_ms'], t['a_reused']):>9} "
                       f"{self._ms(t['b_ms'], t['b_reused']):>9}")
        return "\n".join(out)

    __repr__ = __str__

    def _repr_markdown_(self) -> str:
        rows = "\n".join(f"| `{t['operator']}` | {self._ms(t['a_ms'], t['a_reused'])} | "
                         f"{self._ms(t['b_ms'], t['b_reused'])} |" for t in self.timings)
        parts = [f"**Turn diff** {self._headline()}"]
        ev = self.evidence
        parts.append("**Evidence:** same" if ev["same"] else "**Evidence:** changed\n\n```diff\n" + "\n".join(
            [f"+ {e}" for e in ev["added"]] + [f"- {e}" for e in ev["removed"]]) + "\n```")
        for name, part in (("Prompt", self.prompt), ("Answer", self.answer)):
            if part["same"]:
                parts.append(f"**{name}:** same")
            else:
                parts.append(f"**{name}:** changed\n\n```diff\n" + "\n".join(part["diff"][2:]) + "\n```")
        parts.append("| operator | a (ms) | b (ms) |\n|---|---:|---:|\n" + rows)
        return "\n\n".join(parts)

    def _repr_html_(self) -> str:
        def side_by_side(name: str, part: dict[str, Any]) -> str:
            state = "same" if part["same"] else "changed"
            cells = "".join(f"<td style='vertical-align:top;width:50%'><pre style='white-space:pre-wrap'>"
                            f"{escape(part[k] or '(none)')}</pre></td>" for k in ("a", "b"))
            return f"<tr><th colspan=2 style='text-align:left'>{name}: {state}</th></tr><tr>{cells}</tr>"

        ev = {**self.evidence, "a": "\n".join(self.evidence["a"]), "b": "\n".join(self.evidence["b"])}
        rows = "".join(f"<tr><td><code>{escape(t['operator'])}</code></td><td>{self._ms(t['a_ms'], t['a_reused'])}"
                       f"</td><td>{self._ms(t['b_ms'], t['b_reused'])}</td></tr>" for t in self.timings)
        return (f"<div class='studio-diff'><b>Turn diff</b> {escape(self._headline())}"
                f"<table style='width:100%'>{side_by_side('Evidence', ev)}{side_by_side('Prompt', self.prompt)}"
                f"{side_by_side('Answer', self.answer)}</table>"
                f"<table><tr><th>operator</th><th>a (ms)</th><th>b (ms)</th></tr>{rows}</table></div>")

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "replay": self.replay, "evidence": self.evidence, "prompt": self.prompt,
                "answer": self.answer, "timings": self.timings}


def diff(turn_a: Any, turn_b: Any) -> TurnDiff:
    """What changed from ``turn_a`` to ``turn_b``: evidence, prompt, answer, timings (waits
    for both turns to finish)."""
    return TurnDiff.of(turn_a, turn_b)


__all__ = ["TurnDiff", "diff"]
