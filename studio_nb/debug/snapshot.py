"""A paused turn as JSON, to be continued later — in another process, on another day.

``turn.snapshot()`` writes what the turn had done so far (its trace, with every message),
the message waiting at the breakpoint, and what shaped the request (the operators that
stood in for nodes, the nodes switched off, its priority). ``pipe.resume(snapshot)``
continues it: the kernel replays the trace up to the breakpoint without running anything
(kernel/replay.py) and feeds the pending message to the paused node. The snapshot keeps
the turn's request id, so the turn is saved to memory once, whichever copy finishes.

The format is plain JSON (``codec``): only message classes are rebuilt from it, and the
operators it names are looked up in the operator registry, never imported from it.
"""

from __future__ import annotations

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
        snapshot = path.read_text(encoding="utf-8")
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


def restore(doc: dict[str, Any]) -> tuple[Any, Any]:
    """(the trace so far, the pending message) rebuilt from a loaded snapshot."""
    from studio_nb.debug.trace import TurnTrace
    import studio_nb.messages  # noqa: F401  (registers the message classes with the codec)

    dec = codec.Decoder(doc)
    trace = TurnTrace.from_json(doc["trace"], dec, "/trace")
    return trace, dec.decode(doc["pending"], "/pending")


__all__ = ["FORMAT", "VERSION", "dump", "load", "restore"]
