"""Copies of the loaded model, handed to requests so that no user can hold all of them.

One model process serves every user of a Jupyter server run by one account (its key is
the account, the data dir and the model settings: model_process.py). A llama.cpp context
generates one answer at a time, so with a single copy one user's long generation — or
four of them in a row — made every other user's first token wait for it (issue #21: a
replay with lifted limits held the model for 40 s and alice's answers went from 0.6 s to
14–41 s).

So the process keeps ``size`` copies ("slots"; the weights are memory-mapped once, each
copy adds its own KV cache and compute buffers) and a request takes a free slot under two
rules:

- a user holds at most ``size - 1`` slots while more than one is loaded, so there is
  always one left for somebody else — with the default two slots, each user's requests run
  one at a time (as before) and two users run side by side;
- among the requests allowed to take a slot, the one waiting longest goes first.

Which copy a request gets matters for speed: a copy's KV cache holds the last prompt it
ran, and llama.cpp reuses the longest common prefix. So a user gets the copy their last
request used when it is free (a follow-up, or the same question again, starts where that
prompt is cached), else the copy freed last. Handing copies out in rotation made every
other request of a lone user a full prompt evaluation (~1 s for a 400-token prompt on 2
cores instead of ~20 ms).

Requests name their user with the OpenAI ``user`` field (the front end puts the Jupyter
user there); requests without one share the anonymous user "". The first slot is the one
loaded before the process reports ready; the others load in the background afterwards, so
start-up is not slower.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)


class FairSlots:
    """``size`` model copies behind a fair hand-out (see the module docstring)."""

    def __init__(self, first: Any, make: Callable[[], Any] | None = None, size: int = 1) -> None:
        if size < 1:
            raise ValueError(f"size must be ≥ 1, got {size}")
        self.size = size
        self.loaded: list[Any] = [first]
        self._free: list[Any] = [first]
        self._held: collections.Counter[str] = collections.Counter()
        self._waiting: collections.deque[tuple[object, str]] = collections.deque()
        self._last: dict[str, Any] = {}  # user -> the copy their last request used
        self._cond = threading.Condition()
        self.load_error: str | None = None
        if size > 1 and make is not None:
            threading.Thread(target=self._load_more, args=(make,), name="model-slots", daemon=True).start()

    def _load_more(self, make: Callable[[], Any]) -> None:
        for _ in range(self.size - 1):
            try:
                llm = make()
            except Exception as exc:  # one copy is enough to serve; say why there are not more
                self.load_error = f"{type(exc).__name__}: {exc}"
                log.warning("model process: an extra model slot could not load (%s); serving with %d",
                            self.load_error, len(self.loaded))
                return
            with self._cond:
                self.loaded.append(llm)
                self._free.append(llm)
                self._cond.notify_all()

    @property
    def per_user(self) -> int:
        """Slots one user may hold at once: all but one, once there is more than one."""
        return max(1, len(self.loaded) - 1)

    def _may_take(self, ticket: object, user: str) -> bool:
        if not self._free or self._held[user] >= self.per_user:
            return False
        for waiting_ticket, waiting_user in self._waiting:  # the longest-waiting request that may go, goes
            if self._held[waiting_user] < self.per_user:
                return waiting_ticket is ticket
        return False

    @contextlib.contextmanager
    def slot(self, user: str | None) -> Iterator[Any]:
        """Wait for a slot ``user`` may take; hand it back at the end of the block."""
        user = user or ""
        ticket = object()
        with self._cond:
            self._waiting.append((ticket, user))
            try:
                self._cond.wait_for(lambda: self._may_take(ticket, user))
            finally:
                self._waiting.remove((ticket, user))
            llm = self._take(user)
            self._held[user] += 1
            self._cond.notify_all()  # the next in line may be allowed now
        try:
            yield llm
        finally:
            with self._cond:
                self._free.append(llm)
                self._held[user] -= 1
                if not self._held[user]:
                    del self._held[user]
                self._cond.notify_all()

    def _take(self, user: str) -> Any:
        """The free copy for ``user``: the one their last request used, else the one freed last."""
        mine = self._last.get(user)
        index = next((i for i, c in enumerate(self._free) if c is mine), len(self._free) - 1)
        llm = self._last[user] = self._free.pop(index)
        return llm

    def state(self) -> dict[str, Any]:
        """For ``/health``: slots loaded, in use, and requests waiting."""
        with self._cond:
            return {"slots": len(self.loaded), "slots_wanted": self.size, "slots_busy": len(self.loaded) - len(self._free),
                    "waiting": len(self._waiting), "users_served_now": len(self._held),
                    "slot_load_error": self.load_error}

    def close(self) -> None:
        for llm in self.loaded:
            llm.close()


__all__ = ["FairSlots"]
