"""Telemetry events: one ``StepEvent`` when an operator run starts and one when it ends.

Subscribers are plain callables. They run inline on the event loop, so they must be
quick; anything slow (network exporters) should hand the event to its own queue.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

#: Statuses an end event can carry. "retry" = this attempt failed and another follows;
#: "reused" = a replay took the node's recorded output instead of running it.
END_STATUSES = ("completed", "failed", "skipped", "cancelled", "retry", "reused")
#: neither start nor end: the request waits at a breakpoint before the node
PAUSED = "paused"


@dataclass(frozen=True)
class StepEvent:
    """An operator run starting (``status="running"``) or ending (any END_STATUSES), or a
    request pausing before it (``"paused"``)."""

    operator: str
    status: str
    request_id: str
    session_id: str | None = None
    duration_ms: float | None = None
    error: str | None = None
    attempt: int = 0
    pipeline: str = ""
    ts: float = field(default_factory=time.time)

    @property
    def is_start(self) -> bool:
        return self.status == "running"

    def to_dict(self) -> dict[str, Any]:
        d = {
            "operator": self.operator,
            "status": self.status,
            "request_id": self.request_id,
            "session_id": self.session_id,
            "attempt": self.attempt,
            "pipeline": self.pipeline,
            "ts": self.ts,
        }
        if self.duration_ms is not None:
            d["duration_ms"] = round(self.duration_ms, 3)
        if self.error is not None:
            d["error"] = self.error
        return d


Subscriber = Callable[[StepEvent], Any]


class EventHub:
    """A list of subscribers; a failing subscriber is logged, never breaks a request."""

    def __init__(self) -> None:
        self._subscribers: tuple[Subscriber, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Add ``callback``; returns a function that removes it again."""
        with self._lock:
            self._subscribers = self._subscribers + (callback,)

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers = tuple(s for s in self._subscribers if s is not callback)

        return unsubscribe

    def __bool__(self) -> bool:
        return bool(self._subscribers)

    def publish(self, event: StepEvent) -> None:
        for callback in self._subscribers:
            try:
                callback(event)
            except Exception:  # a broken dashboard must not fail a user's request
                log.exception("event subscriber %r failed", callback)


#: Process-wide subscribers (exporters); pipelines also have their own hub.
global_events = EventHub()
