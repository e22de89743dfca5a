"""Where requests wait: per-operator concurrency slots (by priority) and per-session order.

``PriorityLimiter`` is a counting semaphore whose waiters form a bounded priority queue:
when a slot frees, the highest-priority waiter (then the earliest) gets it; when the
queue is full a newcomer is rejected with BusyError or waits for queue space. Memory is
bounded either way: a waiting request holds one small heap entry.

With ``per_user`` set, one user holds at most that many of the slots at once: a waiter
whose user is at the cap is passed over (it keeps its place) for the best waiter of
another user. The Studio pipeline sets it on the model node, so one user's long answers
never take every model copy while someone else waits (the model process applies the same
rule to its copies: services/inference/fair_slots.py).

``SessionOrder`` makes the requests of one session run one after another, in arrival
order, while different sessions run concurrently.
"""

from __future__ import annotations

import collections
import heapq
import itertools
from typing import Literal

import anyio

from studio_nb.kernel.errors import BusyError


class _Waiter:
    __slots__ = ("event", "granted", "user")

    def __init__(self, user: str | None = None) -> None:
        self.event = anyio.Event()
        self.granted = False
        self.user = user


class PriorityLimiter:
    def __init__(
        self,
        capacity: int,
        queue_capacity: int | None = None,
        on_full: Literal["reject", "wait"] = "reject",
        name: str = "",
        per_user: int | None = None,
    ) -> None:
        self.capacity = capacity
        self.per_user = per_user
        self._held: collections.Counter[str | None] = collections.Counter()
        self.queue_capacity = queue_capacity
        self.on_full = on_full
        self.name = name
        self.active = 0
        self._heap: list[tuple[int, int, _Waiter]] = []
        self._seq = itertools.count()
        self._space_waiters: list[anyio.Event] = []

    @property
    def waiting(self) -> int:
        return len(self._heap)

    def _may_hold(self, user: str | None) -> bool:
        return self.per_user is None or self._held[user] < self.per_user

    def _take(self, user: str | None) -> None:
        if self.per_user is not None:
            self._held[user] += 1

    async def acquire(self, priority: int = 0, user: str | None = None) -> None:
        if self.active < self.capacity and self._may_hold(user) and not any(
                self._may_hold(w.user) for _, _, w in self._heap):
            self.active += 1
            self._take(user)
            return
        while self.queue_capacity is not None and len(self._heap) >= self.queue_capacity:
            if self.on_full == "reject":
                raise BusyError(
                    f"operator {self.name!r} is busy: {self.active} running and {len(self._heap)} waiting "
                    f"(queue_capacity={self.queue_capacity}); retry later"
                )
            space = anyio.Event()
            self._space_waiters.append(space)
            try:
                await space.wait()
            finally:
                if space in self._space_waiters:
                    self._space_waiters.remove(space)
        waiter = _Waiter(user)
        entry = (-priority, next(self._seq), waiter)
        heapq.heappush(self._heap, entry)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:  # we were handed a slot while being cancelled: pass it on
                self.release(user)
            else:
                self._heap.remove(entry)
                heapq.heapify(self._heap)
                self._signal_space()
            raise

    def release(self, user: str | None = None) -> None:
        if self.per_user is not None:
            self._held[user] -= 1
            if self._held[user] <= 0:
                del self._held[user]
        entry = self._next_waiter()
        if entry is not None:  # the slot moves to the best waiter that may hold one; ``active`` is unchanged
            self._signal_space()
            waiter = entry[2]
            self._take(waiter.user)
            waiter.granted = True
            waiter.event.set()
        else:
            self.active -= 1

    def _next_waiter(self) -> tuple[int, int, _Waiter] | None:
        """Pop the highest-priority (then earliest) waiter whose user is under the cap."""
        if not self._heap:
            return None
        if self.per_user is None:
            return heapq.heappop(self._heap)
        eligible = [e for e in self._heap if self._may_hold(e[2].user)]
        if not eligible:
            return None
        best = min(eligible)
        self._heap.remove(best)
        heapq.heapify(self._heap)
        return best

    def _signal_space(self) -> None:
        if self._space_waiters:
            self._space_waiters.pop(0).set()


class SessionOrder:
    """One FIFO lock per session id, dropped again when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[anyio.Lock, list[int]]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    def turn(self, session_id: str) -> "_SessionTurn":
        return _SessionTurn(self, session_id)


class _SessionTurn:
    def __init__(self, order: SessionOrder, session_id: str) -> None:
        self.order = order
        self.session_id = session_id

    async def __aenter__(self) -> None:
        entry = self.order._locks.get(self.session_id)
        if entry is None:
            entry = self.order._locks[self.session_id] = (anyio.Lock(), [0])
        entry[1][0] += 1
        try:
            await entry[0].acquire()
        except BaseException:
            self._leave(entry)
            raise

    async def __aexit__(self, *exc: object) -> None:
        entry = self.order._locks[self.session_id]
        entry[0].release()
        self._leave(entry)

    def _leave(self, entry: tuple[anyio.Lock, list[int]]) -> None:
        entry[1][0] -= 1
        if entry[1][0] == 0:
            del self.order._locks[self.session_id]
