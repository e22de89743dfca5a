"""One shape for every figure a benchmark reports, so ``make bench`` can put them in one table.

A figure is ``{"name", "value", "unit", "baseline", "ratio", "goal", "met"}``:

- ``value`` is what was measured, ``baseline`` what it is compared with in the same run
  (raw llama.cpp, the serial chain, raw ``encode``...), ``ratio`` = value / baseline;
- ``goal`` is a human-readable target (``"<= 30"``, ``">= 1.3"``) checked against ``value``
  (or against ``ratio`` when the goal says so: ``"ratio >= 0.97"``); ``met`` is its verdict,
  None when the figure has no goal.
"""

from __future__ import annotations

import json
import operator
import os
import re
from pathlib import Path
from typing import Any

#: where results go; tests point it elsewhere so a smoke run does not overwrite measured figures
RESULTS = Path(os.environ.get("STUDIO_NB_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")
_GOAL = re.compile(r"^(?P<what>ratio\s+)?(?P<op><=|>=|<|>|==)\s*(?P<x>-?[\d.]+)$")
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}


def figure(name: str, value: float, unit: str, *, baseline: float | None = None, goal: str | None = None,
           note: str = "") -> dict[str, Any]:
    ratio = (value / baseline) if baseline not in (None, 0) and value == value else None
    met = None
    if goal:
        m = _GOAL.match(goal.strip())
        if m is None:
            raise ValueError(f"goal {goal!r} must look like '<= 30' or 'ratio >= 0.97'")
        subject = ratio if m.group("what") else value
        met = bool(subject is not None and subject == subject and _OPS[m.group("op")](subject, float(m.group("x"))))
    out = {"name": name, "value": _round(value), "unit": unit, "baseline": _round(baseline),
           "ratio": _round(ratio), "goal": goal, "met": met}
    if note:
        out["note"] = note
    return out


def _round(x: float | None) -> float | None:
    if x is None or x != x:
        return x
    return round(float(x), 4 if abs(x) < 10 else 2)


def save(bench: str, figures: list[dict[str, Any]], details: dict[str, Any] | None = None) -> Path:
    """``bench/results/<bench>.json`` with the figures (and the benchmark's own details)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{bench}.json"
    payload = {"bench": bench, "figures": figures, **(details or {})}
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    return path
