"""python_help: the signature and docstring of an importable object, by dotted name.

The name comes from a chat message, and importing a module runs its code. So we accept
only dotted identifiers (no calls, no subscripts, no dunder attributes), import only the
module part through ``importlib`` (never ``eval``), and only from the standard library
or a package the process has already imported (a chat must not make the server run an
arbitrary installed package's top-level code). A few standard modules have visible side
effects on import (``antigravity`` opens a browser, ``this`` prints, GUI toolkits open
windows): they are refused by a guard on ``sys.meta_path`` for the whole import, so one
pulled in *indirectly* (``turtledemo.clock`` imports ``turtle``, which imports
``tkinter``) is refused too, not just a name that starts with one.
"""

from __future__ import annotations

import importlib
import importlib.abc
import inspect
import re
import sys
import threading
from typing import Any

from studio_nb.errors import ToolError

MAX_NAME_CHARS = 200
MAX_DOC_CHARS = 3000
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
REFUSED_MODULES = frozenset({
    "antigravity", "this", "turtle", "tkinter", "_tkinter", "idlelib", "__main__", "pydoc_data",
    "__hello__", "__phello__",
})


class RefusedImport(ImportError):
    pass


class _Guard(importlib.abc.MetaPathFinder):
    """Refuses REFUSED_MODULES (and their submodules) while a lookup imports."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.split(".", 1)[0] in REFUSED_MODULES:
            raise RefusedImport(f"importing {fullname!r} has side effects", name=fullname)
        return None


_GUARD = _Guard()
_guard_users = 0
_guard_lock = threading.Lock()


class _guarded:
    """Context manager: the guard sits first on sys.meta_path while any lookup runs."""

    def __enter__(self) -> None:
        global _guard_users
        with _guard_lock:
            if _guard_users == 0:
                sys.meta_path.insert(0, _GUARD)
            _guard_users += 1

    def __exit__(self, *exc: object) -> None:
        global _guard_users
        with _guard_lock:
            _guard_users -= 1
            if _guard_users == 0:
                sys.meta_path.remove(_GUARD)


def _allowed(top: str) -> bool:
    return top in sys.modules or top in sys.stdlib_module_names


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
    if not _allowed(parts[0]):
        raise ToolError(
            f"no module named {parts[0]!r} is loaded: python_help looks up the standard library and "
            "packages the server has already imported"
        )
    with _guarded():
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
        except RefusedImport as exc:
            raise ToolError(f"{module_name!r} is not imported by python_help: it imports {exc.name!r}, "
                            "which has side effects") from None
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
