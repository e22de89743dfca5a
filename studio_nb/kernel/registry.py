"""Operators by name, so YAML can say ``operator: IntentRouterOp``.

Every concrete Operator subclass registers itself under its class name when it is
defined (a notebook cell that redefines ``Upper`` simply replaces it). Other packages add
operators through the entry-point group ``studio_nb.operators``; they are loaded on the
first lookup that misses.

A name may also be a full import path ``package.module:Class``, but only where the caller
says the name comes from code-like configuration it trusts (``get(name, imports=True)``: a
pipeline YAML the user chose). Importing a module runs it, so a name read from data a
user may have been sent — a paused-turn snapshot, a stored trace, a replay or variant
request — must resolve among the registered operators alone (the default). Whatever the
lookup, what comes back is an Operator class: never a function, a module or another object
that a name could reach (``os:environ.update``).
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


def get(name: str, *, imports: bool = False) -> type["Operator"]:
    """The operator class registered as ``name``; raises ConfigError listing what is known.

    ``imports=True`` also resolves ``package.module:Class`` by importing the module (see
    the module docstring for why that is the caller's explicit choice).
    """
    if not isinstance(name, str):
        raise ConfigError(f"an operator name must be a string, not {type(name).__name__}")
    if name in _by_name:
        return _by_name[name]
    _load_entry_points()
    if name in _by_name:
        return _by_name[name]
    by_path = _registered_by_path(name)  # what registered_name() writes for a shadowed class
    if by_path is not None:
        return by_path
    if ":" in name and imports:
        return _check_operator(name, _import(name))
    known = ", ".join(sorted(_by_name)) or "(none)"
    hint = (" (import paths are resolved only for a pipeline YAML; register the class, or import the "
            "module that defines it first)" if ":" in name else "")
    raise ConfigError(f"unknown operator {name!r}{hint}; registered operators: {known}")


def _registered_by_path(name: str) -> type | None:
    with _lock:
        classes = list(_by_name.values())
    for cls in classes:
        if f"{cls.__module__}:{cls.__qualname__}" == name:
            return cls
    return None


def _import(name: str) -> object:
    module, _, qualname = name.partition(":")
    try:
        obj: object = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import operator {name!r}: {exc}") from exc
    return obj


def _check_operator(name: str, obj: object) -> type["Operator"]:
    from studio_nb.kernel.operator import Operator

    if not (isinstance(obj, type) and issubclass(obj, Operator)):
        raise ConfigError(f"{name!r} is not an Operator class (it is {type(obj).__name__})")
    return obj


def names() -> list[str]:
    _load_entry_points()
    return sorted(_by_name)
