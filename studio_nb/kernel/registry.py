"""Operators by name, so YAML can say ``operator: IntentRouterOp``.

Every concrete Operator subclass registers itself under its class name when it is
defined (a notebook cell that redefines ``Upper`` simply replaces it). Other packages add
operators through the entry-point group ``studio_nb.operators``; they are loaded on the
first lookup that misses. A name may also be a full import path ``package.module:Class``.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import threading
from typing import TYPE_CHECKING

from studio_nb.kernel.errors import ConfigError

if TYPE_CHECKING:
    from studio_nb.kernel.operator import Operator

ENTRY_POINT_GROUP = "studio_nb.operators"

_by_name: dict[str, type] = {}
_lock = threading.Lock()
_entry_points_loaded = False


def register(cls: type, name: str | None = None) -> type:
    """Register ``cls`` under ``name`` (default: its class name). Usable as a decorator."""
    with _lock:
        _by_name[name or cls.__name__] = cls
    return cls


def registered_name(cls: type) -> str:
    """The name YAML should use for ``cls``: its short name if that resolves to it, else its import path."""
    short = cls.__name__
    if _by_name.get(short) is cls:
        return short
    return f"{cls.__module__}:{cls.__qualname__}"


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        try:
            register(ep.load(), ep.name)
        except Exception as exc:  # a broken plug-in must not break the others
            import logging

            logging.getLogger(__name__).warning("could not load operator entry point %s: %s", ep.name, exc)


def get(name: str) -> type["Operator"]:
    """The operator class for ``name``; raises ConfigError listing what is known."""
    if name in _by_name:
        return _by_name[name]
    if ":" in name:
        module, _, qualname = name.partition(":")
        try:
            obj = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
            return obj  # type: ignore[return-value]
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"cannot import operator {name!r}: {exc}") from exc
    _load_entry_points()
    if name in _by_name:
        return _by_name[name]
    known = ", ".join(sorted(_by_name)) or "(none)"
    raise ConfigError(f"unknown operator {name!r}; registered operators: {known}")


def names() -> list[str]:
    _load_entry_points()
    return sorted(_by_name)
