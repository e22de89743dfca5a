"""python_help: the signature and docstring of an importable object, by dotted name.

The name comes from a chat message. We accept only dotted identifiers (no calls, no
subscripts, no dunder attributes), import only the module part through ``importlib``
(never ``eval``), and refuse a few modules whose import has visible side effects
(``antigravity`` opens a browser, ``this`` prints, GUI toolkits open windows).
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

from studio_nb.errors import ToolError

MAX_NAME_CHARS = 200
MAX_DOC_CHARS = 3000
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
REFUSED_MODULES = frozenset({"antigravity", "this", "turtle", "tkinter", "idlelib", "__main__", "pydoc_data"})


def python_help(object: str, max_chars: int = MAX_DOC_CHARS) -> dict:  # noqa: A002 - the tool's public argument name
    """Signature and (truncated) docstring of ``object``, e.g. ``json.dumps``."""
    name = object.strip() if isinstance(object, str) else object
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or not _DOTTED.fullmatch(name):
        raise ToolError(f"{object!r} is not a dotted Python name like 'os.path.join'")
    parts = name.split(".")
    if any(p.startswith("__") for p in parts):
        raise ToolError(f"{name!r}: dunder names are not looked up")
    if parts[0] in REFUSED_MODULES:
        raise ToolError(f"module {parts[0]!r} is not imported by python_help (importing it has side effects)")
    target, module_name = _resolve(parts)
    doc = inspect.getdoc(target) or ""
    truncated = len(doc) > max_chars
    return {
        "object": name,
        "module": module_name,
        "kind": _kind(target),
        "signature": _signature(name, target),
        "doc": doc[:max_chars] + ("\n[... truncated]" if truncated else ""),
        "truncated": truncated,
    }


def _resolve(parts: list[str]) -> tuple[Any, str]:
    """Import the longest importable module prefix, then walk attributes for the rest."""
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or module_name == exc.name or module_name.startswith(exc.name + "."):
                continue  # this prefix is not a module; try a shorter one
            raise ToolError(f"importing {module_name!r} failed: {exc}") from None
        except Exception as exc:  # a module that breaks on import
            raise ToolError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
        target: Any = module
        for attr in parts[cut:]:
            try:
                target = getattr(target, attr)
            except AttributeError:
                raise ToolError(f"{module_name!r} has no attribute path {'.'.join(parts[cut:])!r}") from None
        return target, module_name
    raise ToolError(f"no module named {parts[0]!r} is installed")


def _kind(obj: Any) -> str:
    for kind, test in (("module", inspect.ismodule), ("class", inspect.isclass),
                       ("method", inspect.ismethod), ("function", inspect.isroutine)):
        if test(obj):
            return kind
    return type(obj).__name__


def _signature(name: str, obj: Any) -> str | None:
    if inspect.ismodule(obj):
        return None
    try:
        return f"{name.rsplit('.', 1)[-1]}{inspect.signature(obj)}"
    except (TypeError, ValueError):  # builtins without text signatures, plain values
        return None
