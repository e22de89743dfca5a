"""Small helpers for the type checks done when wiring operators.

Sockets are plain Python type hints. We only need three questions answered: which types
can a value of type X be (union members), does a socket accept a value (runtime
``isinstance``), and can an output type ever feed an input type (wiring time).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Callable

_UNION_TYPES = (typing.Union, types.UnionType)


def members(tp: Any) -> tuple[Any, ...]:
    """The alternatives of a union type, or ``(tp,)`` for any other type."""
    if typing.get_origin(tp) in _UNION_TYPES:
        return typing.get_args(tp)
    return (tp,)


def runtime_class(tp: Any) -> type | None:
    """The class an ``isinstance`` check can use for ``tp`` (``list[str]`` -> ``list``)."""
    if tp is Any or tp is None:
        return None if tp is Any else type(None)
    origin = typing.get_origin(tp)
    if origin is not None and isinstance(origin, type):
        return origin
    return tp if isinstance(tp, type) else None


def _member_fits(out_tp: Any, in_tp: Any) -> bool:
    if in_tp is Any or out_tp is Any:
        return True
    if out_tp == in_tp:
        return True
    out_cls, in_cls = runtime_class(out_tp), runtime_class(in_tp)
    if out_cls is None or in_cls is None:
        return False
    return issubclass(out_cls, in_cls)


def fits(out_tp: Any, in_tp: Any) -> bool:
    """True if some value of type ``out_tp`` can be passed to a socket typed ``in_tp``."""
    return any(_member_fits(o, i) for o in members(out_tp) for i in members(in_tp))


def unmatched(out_tp: Any, in_types: list[Any]) -> list[Any]:
    """Members of ``out_tp`` that no type in ``in_types`` accepts (values nobody can take)."""
    return [o for o in members(out_tp) if not any(_member_fits(o, i) for t in in_types for i in members(t))]


def acceptor(in_tp: Any) -> Callable[[Any], bool]:
    """A fast runtime check ``value -> bool`` for a socket typed ``in_tp``."""
    classes = []
    for m in members(in_tp):
        cls = runtime_class(m)
        if cls is None:  # Any or an un-checkable hint: accept everything
            return lambda value: True
        classes.append(cls)
    klass = tuple(classes)
    return lambda value: isinstance(value, klass)


def type_name(tp: Any) -> str:
    """A short readable name: ``str``, ``list[Document]``, ``Response | Regenerate``."""
    if tp is Any:
        return "Any"
    if tp is type(None):
        return "None"
    if tp is Ellipsis:
        return "..."
    if typing.get_origin(tp) in _UNION_TYPES:
        return " | ".join(type_name(m) for m in typing.get_args(tp))
    if typing.get_origin(tp) is not None:
        args = ", ".join(type_name(a) for a in typing.get_args(tp))
        return f"{type_name(typing.get_origin(tp))}[{args}]"
    return getattr(tp, "__name__", repr(tp))
