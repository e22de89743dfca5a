"""The Studio pipeline's recent turns, bounded: what the page inspects and replays.

Traces hold live messages (retrieved documents, prompts), so keeping every turn's trace
alive would grow without bound. The log keeps the last ``live`` turns' traces as objects;
older ones are compacted to their JSON form (their records are rebuilt on demand), and
beyond ``live + kept`` a turn leaves the log altogether — its trace is still in the
memory database with the turn, and a ``Turn`` object someone holds keeps its own.

Turns are keyed by (user, request id), like sessions (``studio_nb.access``): request ids
come from clients, so bob reusing one of alice's must neither replace her turn nor be
returned for it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class TurnLog:
    def __init__(self, live: int = 16, kept: int = 128) -> None:
        self.live = max(1, live)
        self.kept = max(0, kept)
        self._turns: OrderedDict[tuple[str, str], Any] = OrderedDict()  # (user, request_id) -> Turn, oldest first
        self._last: OrderedDict[tuple[str, str], str] = OrderedDict()  # (user, session) -> request_id
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._turns)

    def add(self, turn: Any) -> None:
        """Remember ``turn`` (the newest); compact and forget the oldest as needed."""
        with self._lock:
            own = (turn.user, turn.request_id)
            self._turns.pop(own, None)
            self._turns[own] = turn
            key = (turn.user, turn.session_id)
            self._last.pop(key, None)
            self._last[key] = turn.request_id
            turns = list(self._turns.values())
            for old in turns[: max(0, len(turns) - self.live)]:
                if old.done and not old.trace.compacted:
                    old.trace.compact(getattr(old, "stored_trace", None))
            while len(self._turns) > self.live + self.kept:
                (_, rid), old = self._turns.popitem(last=False)
                if self._last.get((old.user, old.session_id)) == rid:
                    del self._last[(old.user, old.session_id)]

    def get(self, request_id: str, user: str | None = None) -> Any:
        """The turn ``request_id`` if it is in the log and ``user`` (None: anyone; the newest) asked it."""
        with self._lock:
            if user is not None:
                return self._turns.get((user, request_id))
            return next((t for (_, rid), t in reversed(self._turns.items()) if rid == request_id), None)

    def last(self, session_id: str, user: str) -> Any:
        """The newest turn (asked or replayed) of ``user``'s session, if still in the log."""
        with self._lock:
            rid = self._last.get((user, session_id))
            return self._turns.get((user, rid)) if rid is not None else None


__all__ = ["TurnLog"]
