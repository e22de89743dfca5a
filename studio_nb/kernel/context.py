"""The per-request context the engine threads through a pipeline run.

Operators rarely need it, but it is reachable from inside ``process`` through
``current_request()`` (a contextvar, so it follows tasks and worker threads).
"""

from __future__ import annotations

import contextvars
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from studio_nb.kernel.events import StepEvent
from studio_nb.kernel.trace import Trace


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


@dataclass
class RequestContext:
    """Identity, scheduling hints and the results collected while one request runs."""

    request_id: str = field(default_factory=new_request_id)
    session_id: str | None = None
    priority: int = 0
    user: str | None = None
    #: per-request event callback (e.g. a WebSocket turning events into step frames)
    on_event: Callable[[StepEvent], Any] | None = None
    #: where streaming operators' items go; set by ``Pipeline.astream``
    emit: Callable[[str, Any], Awaitable[None]] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: nodes switched off for this request only (a session's A/B), on top of ``node.enabled``
    disabled: frozenset[str] = frozenset()
    #: operators that stand in for a node's own in this request only (a session's variant,
    #: a replay's changed operator), by node name; ``Pipeline.override`` builds checked ones
    overrides: dict[str, Any] = field(default_factory=dict)
    #: a ``ReplayPlan``: reuse a recorded request's outputs upstream of a change
    replay: Any = None
    #: pause before these nodes: ``await on_pause(node, visit, message)`` returns the
    #: message to go on with (the caller decides when; no slot or lock is held meanwhile)
    breakpoints: frozenset[str] = frozenset()
    on_pause: Callable[[str, int, Any], Awaitable[Any]] | None = None
    # filled in by the engine
    outputs: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    degraded: dict[str, str] = field(default_factory=dict)
    loops: dict[tuple[str, str], int] = field(default_factory=dict)
    #: every node run of this request: input, output, status, duration (kernel/trace.py)
    trace: Trace = field(default_factory=Trace)

    def add_timing(self, operator: str, ms: float) -> None:
        self.timings[operator] = self.timings.get(operator, 0.0) + ms


_current: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar("studio_nb_request", default=None)


def current_request() -> RequestContext | None:
    """The request being processed by the calling operator, or None outside a pipeline."""
    return _current.get()
