"""A paused turn as JSON, to be continued later — in another process, on another day.

``turn.snapshot()`` writes what the turn had done so far (its trace, with every message),
the message waiting at the breakpoint, and what shaped the request (the operators that
stood in for nodes, the nodes switched off, its priority). ``pipe.resume(snapshot)``
continues it: the kernel replays the trace up to the breakpoint without running anything
(kernel/replay.py) and feeds the pending message to the paused node. The snapshot keeps
the turn's request id, so the turn is saved to memory once, whichever copy finishes.

The format is plain JSON (``codec``): only message classes are rebuilt from it, and the
operators it names are looked up in the operator registry, never imported from it.

A snapshot is a file people send each other, so ``resume`` treats it as untrusted data:
:func:`check` runs before anything else is built from it. Each override must name a node
of this pipeline and a *registered* operator class that fits it, and its params must be
plain JSON values for parameters that class's constructor declares — a name such as
``IPython:start_ipython`` or ``os:environ.update`` is refused, never imported or called.
The decoder (``codec.Decoder``) bounds the document itself: no ``$ref`` cycles, each
referenced object decoded once, a depth and a size cap.
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

from studio_nb.errors import ConfigError
from studio_nb.kernel import codec, registry

FORMAT = "studio-nb/paused-turn"
VERSION = 1


def dump(turn: Any, node: str, visit: int, pending: Any, ctx: Any) -> dict[str, Any]:
    """The snapshot of ``turn``, paused before the ``visit``-th run of ``node``."""
    enc = codec.Encoder()
    overrides = {name: {"operator": registry.registered_name(type(op)), "params": op.config}
                 for name, op in ctx.overrides.items()}
    doc: dict[str, Any] = {
        "format": FORMAT, "version": VERSION,
        "request_id": turn.request_id, "session_id": turn.session_id, "user": turn.user,
        "question": turn.question, "replay_of": turn.replay_of,
        "paused_at": node, "visit": visit, "priority": ctx.priority, "disabled": sorted(ctx.disabled),
        "overrides": codec.encode(overrides, shared=False),
    }
    doc["trace"] = ctx.trace.to_json(enc, "/trace")  # before "pending": its $refs point into the trace
    doc["pending"] = enc.encode(pending, "/pending")
    if enc.lossy:
        doc["lossy"] = True  # something could not be written faithfully (shown as a repr)
    return doc


def load(snapshot: dict[str, Any] | str | os.PathLike) -> dict[str, Any]:
    """A snapshot given as a dict, JSON text or a path to a JSON file, checked."""
    if isinstance(snapshot, (str, os.PathLike)) and not str(snapshot).lstrip().startswith("{"):
        path = Path(snapshot).expanduser()
        if not path.is_file():
            raise ConfigError(f"no snapshot file {path}; pass turn.snapshot()'s dict, its JSON or a file path")
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"snapshot file {path} is over {MAX_BYTES // (1024 * 1024)} MB; it is not a paused turn")
        snapshot = path.read_text(encoding="utf-8")
    if isinstance(snapshot, str) and len(snapshot) > MAX_BYTES:
        raise ConfigError(f"the snapshot is over {MAX_BYTES // (1024 * 1024)} MB; it is not a paused turn")
    if isinstance(snapshot, str):
        try:
            snapshot = json.loads(snapshot)
        except ValueError as exc:
            raise ConfigError(f"the snapshot is not valid JSON: {exc}") from None
    if not isinstance(snapshot, dict) or snapshot.get("format") != FORMAT:
        raise ConfigError(f"not a paused-turn snapshot (expected format {FORMAT!r}); make one with turn.snapshot()")
    if snapshot.get("version") != VERSION:
        raise ConfigError(f"snapshot version {snapshot.get('version')} is not supported (this studio-nb reads "
                          f"version {VERSION})")
    return snapshot


#: the largest snapshot ``load`` reads (a paused turn's trace is a few hundred kilobytes)
MAX_BYTES = 16 * 1024 * 1024
#: constructor parameters a snapshot never sets (the node's own name and policy are kept)
_RESERVED = frozenset({"self", "name", "policy"})


def check(doc: dict[str, Any], pipeline: Any) -> dict[str, dict[str, Any]]:
    """The snapshot's operator overrides, validated against ``pipeline`` (see the module doc).

    Returns node -> {"operator": registered name, "params": {...}}; raises ConfigError
    naming the first thing that is not allowed.
    """
    from studio_nb.kernel import registry

    nodes = pipeline.nodes
    for key, kind in (("request_id", str), ("session_id", str), ("question", str), ("paused_at", str)):
        if not isinstance(doc.get(key), kind):
            raise ConfigError(f"snapshot field {key!r} must be a {kind.__name__}")
    if doc["paused_at"] not in nodes:
        raise ConfigError(f"the snapshot is paused at {doc['paused_at']!r}, which is not a node of this pipeline")
    if not isinstance(doc.get("visit"), int) or isinstance(doc.get("visit"), bool) or doc["visit"] < 0:
        raise ConfigError("snapshot field 'visit' must be a whole number ≥ 0")
    if not isinstance(doc.get("priority", 0) or 0, int):
        raise ConfigError("snapshot field 'priority' must be a whole number")
    disabled = doc.get("disabled") or []
    if not isinstance(disabled, list) or any(not isinstance(n, str) or n not in nodes for n in disabled):
        raise ConfigError("snapshot field 'disabled' must list node names of this pipeline")
    overrides = doc.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError("snapshot field 'overrides' must map node names to {operator, params}")
    out: dict[str, dict[str, Any]] = {}
    for node, spec in overrides.items():
        if node not in nodes:
            raise ConfigError(f"the snapshot overrides {node!r}, which is not a node of this pipeline")
        if not isinstance(spec, dict) or not isinstance(spec.get("params") or {}, dict):
            raise ConfigError(f"override of {node!r} must be {{'operator': name, 'params': {{...}}}}")
        name = spec.get("operator")
        cls = registry.get(name)  # registered classes only: nothing is imported for a snapshot
        params = dict(spec.get("params") or {})
        takes = {n for n, p in inspect.signature(cls.__init__).parameters.items()
                 if n not in _RESERVED and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        unknown = sorted(set(params) - takes)
        if unknown:
            raise ConfigError(f"override of {node!r}: {cls.__name__} has no parameter {', '.join(map(repr, unknown))}; "
                              f"it takes: {', '.join(sorted(takes)) or 'none'}")
        for key, value in params.items():
            if not _plain(value):
                raise ConfigError(f"override of {node!r}: parameter {key!r} must be plain JSON data")
        out[node] = {"operator": name, "params": params}
    return out


def _plain(value: Any, depth: int = 0) -> bool:
    """A JSON value (what a snapshot's params can hold), at most 32 levels deep."""
    if depth > 32:
        return False
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def restore(doc: dict[str, Any]) -> tuple[Any, Any]:
    """(the trace so far, the pending message) rebuilt from a loaded snapshot."""
    from studio_nb.debug.trace import TurnTrace
    import studio_nb.messages  # noqa: F401  (registers the message classes with the codec)

    dec = codec.Decoder(doc)
    trace = TurnTrace.from_json(doc["trace"], dec, "/trace")
    return trace, dec.decode(doc["pending"], "/pending")


__all__ = ["FORMAT", "MAX_BYTES", "VERSION", "check", "dump", "load", "restore"]
