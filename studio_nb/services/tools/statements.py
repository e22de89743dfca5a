"""A tool result stated as an answer: ``17*23 = 391``, not a dict for the model to retell.

The bundled model garbles numbers it is asked to repeat, so a tool's result is the answer
itself (DESIGN §1: "tool results are stated directly"). One function per tool turns its
result into a short plain-text statement; unknown tools fall back to their JSON.
"""

from __future__ import annotations

import json
from typing import Any

MAX_CHARS = 600


def _calculator(args: dict, result: Any) -> str:
    return f"{args.get('expression', '?')} = {result}"


def _read_file(args: dict, result: dict) -> str:
    text = result.get("text", "")
    cut = text[:MAX_CHARS] + ("…" if len(text) > MAX_CHARS or result.get("truncated") else "")
    return f"{result.get('path', args.get('path'))} ({result.get('size', '?')} bytes):\n{cut}"


def _list_files(args: dict, result: dict) -> str:
    names = [e["path"] + ("/" if e.get("type") == "dir" else "") for e in result.get("entries", [])]
    more = " …" if result.get("truncated") else ""
    head = f"{len(names)} entries in {result.get('path', '.')}"
    return f"{head}: " + ", ".join(names[:60]) + more if names else f"no entries in {result.get('path', '.')}"


def _python_help(args: dict, result: dict) -> str:
    doc = (result.get("doc") or "").strip().split("\n\n")[0]
    sig = result.get("signature") or result.get("object")
    return f"{sig} ({result.get('kind')} in {result.get('module')}): {doc[:MAX_CHARS]}"


def _datetime_now(args: dict, result: dict) -> str:
    return f"{result.get('iso') or result.get('datetime') or result} ({result.get('timezone', args.get('timezone', 'UTC'))})"


def _list_domains(args: dict, result: Any) -> str:
    names = [d.get("name", str(d)) if isinstance(d, dict) else str(d) for d in (result or [])]
    return "knowledge domains: " + (", ".join(names) if names else "none yet")


_STATERS = {
    "calculator": _calculator,
    "read_file": _read_file,
    "list_files": _list_files,
    "python_help": _python_help,
    "datetime_now": _datetime_now,
    "list_domains": _list_domains,
}


def state(name: str, arguments: dict, result: Any, error: str | None = None) -> str:
    """The answer a tool call gives, as one short statement."""
    if error:
        return f"{name} failed: {error}"
    stater = _STATERS.get(name)
    try:
        if stater is not None:
            return stater(arguments, result)
    except (AttributeError, KeyError, TypeError):  # an unexpected result shape: show it as it is
        pass
    return f"{name}: {json.dumps(result, ensure_ascii=False, default=str)[:MAX_CHARS]}"
