"""Messages as JSON and back: for trace summaries, persisted traces and pause snapshots.

Why a codec of our own: a turn's trace must outlive the process (inspect yesterday's turn,
resume a paused one elsewhere), and ``dataclasses.asdict`` loses what a message *is*
(tuples become lists, nested messages become anonymous dicts). Here a dataclass becomes
``{"__type__": "UserMessage", <field>: <value>, ...}`` and comes back as the same class,
with tuples restored from the field's type hints.

Two rules keep it safe and small:

- Only registered classes are rebuilt (``register(*classes)``; the messages module
  registers its own). A snapshot is data: decoding never imports or calls anything else,
  an unknown ``__type__`` stays a plain dict. A class whose fields changed may define
  ``upgrade_fields(values) -> values`` (a classmethod) to map an older document's
  decoded fields onto its own, so yesterday's traces still load.
- One document shares objects: a message met a second time (the RoutedMessage inside every
  later message of a turn) is written once and then as ``{"$ref": "/path/of/first"}``, so
  a trace is a few kilobytes instead of every record repeating the retrieved documents.

Decoding is bounded, since a snapshot is a file anyone may have written: a ``$ref`` that
points (directly or not) into itself is an error, not a ``RecursionError``; each referenced
object is decoded once and then shared, so a document whose references fan out decodes in
time linear in its size; nesting deeper than ``MAX_DEPTH`` and documents of more than
``MAX_NODES`` values are refused (``ConfigError``).

``Encoder(max_str=..., max_depth=..., shared=False)`` makes clipped, fully expanded views
for people (the Studio page's inspector); those are marked lossy (``encoder.lossy``).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import math
import types
import typing
from typing import Any, Iterable

from studio_nb.kernel.errors import ConfigError

TYPE = "__type__"
REF = "$ref"
#: deepest nesting a decoded document may have (a turn's messages nest a dozen levels)
MAX_DEPTH = 128
#: most values one document may hold (a long turn's trace holds a few tens of thousands)
MAX_NODES = 2_000_000

_types: dict[str, type] = {}
_hints: dict[type, dict[str, Any]] = {}


def register(*classes: type) -> None:
    """Let ``decode`` rebuild these dataclasses (by class name)."""
    for cls in classes:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"codec.register takes dataclasses, got {cls!r}")
        _types[cls.__name__] = cls


def type_name(cls: type) -> str:
    """The ``__type__`` tag of ``cls``: its name if registered as itself, else module:qualname."""
    name = cls.__name__
    return name if _types.get(name) is cls else f"{cls.__module__}:{cls.__qualname__}"


def _field_hints(cls: type) -> dict[str, Any]:
    hints = _hints.get(cls)
    if hints is None:
        try:
            hints = typing.get_type_hints(cls)
        except Exception:  # unresolvable forward references: containers stay lists
            hints = {}
        _hints[cls] = hints
    return hints


class Encoder:
    """Turns values into JSON-able data; one instance per document (see the module doc)."""

    def __init__(self, *, max_str: int | None = None, max_depth: int | None = None,
                 max_items: int | None = None, shared: bool = True) -> None:
        self.max_str = max_str
        self.max_depth = max_depth
        self.max_items = max_items
        self.shared = shared
        self.lossy = False  # something was clipped: the result cannot be decoded faithfully
        self._seen: dict[int, str] = {}
        self._alive: list[Any] = []  # keep encoded objects alive so their ids stay unique

    def encode(self, value: Any, path: str = "", depth: int = 0) -> Any:
        if value is None or isinstance(value, (bool, int)) and not isinstance(value, enum.Enum):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else repr(value)  # browsers reject NaN in JSON
        if isinstance(value, str):
            return self._clip(value)
        if isinstance(value, enum.Enum):
            return self.encode(value.value, path, depth)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return self._dataclass(value, path, depth)
        if isinstance(value, (list, tuple, set, frozenset)):
            items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else list(value)
            if self.max_depth is not None and depth >= self.max_depth and items:
                self.lossy = True
                return f"[{len(items)} items]"
            out = [self.encode(v, f"{path}/{i}", depth + 1) for i, v in enumerate(self._cap(items))]
            if len(out) < len(items):
                out.append(f"… {len(items) - len(out)} more")
            return out
        if isinstance(value, dict):
            if self.max_depth is not None and depth >= self.max_depth and value:
                self.lossy = True
                return f"{{{len(value)} keys}}"
            keys = self._cap(list(value))
            return {str(k): self.encode(value[k], f"{path}/{_escape(str(k))}", depth + 1) for k in keys}
        if isinstance(value, BaseException):
            self.lossy = True
            return {"__error__": self._clip(f"{type(value).__name__}: {value}")}
        if isinstance(value, bytes):
            self.lossy = True
            return {"__bytes__": len(value)}
        item = getattr(value, "item", None)  # numpy scalars
        if callable(item) and type(value).__module__ == "numpy":
            return self.encode(item(), path, depth)
        self.lossy = True
        return {"__repr__": self._clip(repr(value))}

    def _dataclass(self, value: Any, path: str, depth: int) -> Any:
        cls = type(value)
        if self.shared:
            first = self._seen.get(id(value))
            if first is not None:
                return {REF: first}
            self._seen[id(value)] = path
            self._alive.append(value)
        if self.max_depth is not None and depth >= self.max_depth:
            self.lossy = True
            return {TYPE: type_name(cls), "…": "nested"}
        out: dict[str, Any] = {TYPE: type_name(cls)}
        for f in dataclasses.fields(value):
            out[f.name] = self.encode(getattr(value, f.name), f"{path}/{f.name}", depth + 1)
        return out

    def _clip(self, text: str) -> str:
        if self.max_str is None or len(text) <= self.max_str:
            return text
        self.lossy = True
        return text[: self.max_str] + f"… [{len(text) - self.max_str} more characters]"

    def _cap(self, items: list) -> list:
        if self.max_items is None or len(items) <= self.max_items:
            return items
        self.lossy = True
        return items[: self.max_items]


class Decoder:
    """Rebuilds what an Encoder wrote; ``root`` is the whole document ($refs point into it).

    Every value decoded at a path is kept by that path, so a ``$ref`` to it (and the walk
    reaching the same path later) gets the same object without decoding it again.
    """

    def __init__(self, root: Any, *, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
        self.root = root
        self.max_depth = max_depth
        self.max_nodes = max_nodes
        self._built: dict[str, Any] = {}
        self._resolving: set[str] = set()  # $ref targets being decoded now: seeing one again is a cycle
        self._nodes = 0

    def decode(self, data: Any, path: str = "", hint: Any = Any, depth: int = 0) -> Any:
        if path in self._built:
            return self._built[path]
        self._nodes += 1
        if self._nodes > self.max_nodes:
            raise ConfigError(f"the document holds over {self.max_nodes} values; it is not one this program wrote")
        if depth > self.max_depth:
            raise ConfigError(f"the document nests deeper than {self.max_depth} levels at {path or '/'}")
        if isinstance(data, dict):
            if REF in data and len(data) == 1:
                return self._ref(data[REF], depth)
            if TYPE in data:
                return self._dataclass(data, path, depth)
            value_hint = _dict_value_hint(hint)
            return {k: self.decode(v, f"{path}/{_escape(k)}", value_hint, depth + 1) for k, v in data.items()}
        if isinstance(data, list):
            item_hints, as_tuple = _sequence_hints(hint, len(data))
            items = [self.decode(v, f"{path}/{i}", h, depth + 1) for i, (v, h) in enumerate(zip(data, item_hints))]
            return tuple(items) if as_tuple else items
        return data

    def _dataclass(self, data: dict[str, Any], path: str, depth: int) -> Any:
        cls = _types.get(data[TYPE]) if isinstance(data[TYPE], str) else None
        hints = _field_hints(cls) if cls is not None else {}
        values = {k: self.decode(v, f"{path}/{_escape(k)}", hints.get(k, Any), depth + 1)
                  for k, v in data.items() if k != TYPE}
        if cls is None:  # not registered: stays data, never code
            obj: Any = {TYPE: data[TYPE], **values}
        else:
            upgrade = getattr(cls, "upgrade_fields", None)
            if upgrade is not None:  # a document written before the class changed its fields
                values = upgrade(values)
            names = {f.name for f in dataclasses.fields(cls) if f.init}
            try:
                obj = cls(**{k: v for k, v in values.items() if k in names})
            except TypeError as exc:  # a required field missing from the document
                raise ConfigError(f"cannot rebuild {cls.__name__} at {path or '/'}: {exc}") from None
        self._built[path] = obj
        return obj

    def _ref(self, target: Any, depth: int) -> Any:
        if not isinstance(target, str) or not (target == "" or target.startswith("/")):
            raise ConfigError(f"bad reference {target!r:.80}: a $ref is a path like /trace/0/output")
        if target in self._built:
            return self._built[target]
        if target in self._resolving:
            raise ConfigError(f"the reference {target!r:.80} points into itself")
        node: Any = self.root  # decoded out of order: find the first occurrence and build it
        try:
            for part in target.split("/")[1:]:
                part = _unescape(part)
                node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ConfigError(f"the reference {target!r:.80} points nowhere in the document") from None
        self._resolving.add(target)
        try:
            value = self.decode(node, target, Any, depth + 1)
        finally:
            self._resolving.discard(target)
        self._built[target] = value
        return value


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _unescape(key: str) -> str:
    return key.replace("~1", "/").replace("~0", "~")


def _members(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _sequence_hints(hint: Any, n: int) -> tuple[Iterable[Any], bool]:
    for member in _members(hint):
        origin = typing.get_origin(member) or member
        if origin is tuple:
            args = typing.get_args(member)
            if len(args) == 2 and args[1] is Ellipsis:
                return [args[0]] * n, True
            return (list(args) + [Any] * n)[:n] if args else [Any] * n, True
        if origin in (list, collections.abc.Sequence):
            args = typing.get_args(member)
            return [args[0] if args else Any] * n, False
    return [Any] * n, False


def _dict_value_hint(hint: Any) -> Any:
    for member in _members(hint):
        if (typing.get_origin(member) or member) is dict:
            args = typing.get_args(member)
            return args[1] if len(args) == 2 else Any
    return Any


def encode(value: Any, **options: Any) -> Any:
    """``value`` as one JSON-able document (see ``Encoder`` for the options)."""
    return Encoder(**options).encode(value)


def decode(data: Any) -> Any:
    """What ``encode`` wrote, rebuilt (registered dataclasses come back as themselves)."""
    return Decoder(data).decode(data)


def replace_fields(value: Any, memo: dict[int, Any] | None = None, **changes: Any) -> Any:
    """``value`` with every dataclass field named in ``changes`` set, at any depth.

    Shared objects stay shared (``memo``, by identity); untouched parts are not copied.
    A replay uses it to give reused messages the new request's id.
    """
    memo = {} if memo is None else memo
    key = id(value)
    if key in memo:
        return memo[key][1]
    new = value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        updates = {}
        for f in dataclasses.fields(value):
            old = getattr(value, f.name)
            nv = changes[f.name] if f.name in changes else replace_fields(old, memo, **changes)
            if nv is not old:
                updates[f.name] = nv
        if updates:
            new = dataclasses.replace(value, **updates)
    elif isinstance(value, (list, tuple)):
        items = [replace_fields(v, memo, **changes) for v in value]
        if any(a is not b for a, b in zip(items, value)):
            new = type(value)(items) if type(value) in (list, tuple) else items
    elif isinstance(value, dict):
        items2 = {k: replace_fields(v, memo, **changes) for k, v in value.items()}
        if any(items2[k] is not value[k] for k in value):
            new = items2
    memo[key] = (value, new)  # the original is kept so its id is not reused while memo lives
    return new


__all__ = ["Decoder", "Encoder", "decode", "encode", "register", "replace_fields", "type_name"]
