"""Where requests wait: per-operator concurrency slots (by priority) and per-session order.

``PriorityLimiter`` is a counting semaphore whose waiters form a bounded priority queue:
when a slot frees, the highest-priority waiter (then the earliest) gets it; when the
queue is full a newcomer is rejected with BusyError or waits for queue space. Memory is
bounded either way: a waiting request holds one small heap entry.

``SessionOrder`` makes the requests of one session run one after another, in arrival
order, while different sessions run concurrently.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Literal

import anyio

from studio_nb.kernel.errors import BusyError


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.granted = False


class PriorityLimiter:
    def __init__(
        self,
        capacity: int,
        queue_capacity: int | None = None,
        on_full: Literal["reject", "wait"] = "reject",
        name: str = "",
    ) -> None:
        self.capacity = capacity
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

    async def acquire(self, priority: int = 0) -> None:
        if self.active < self.capacity and not self._heap:
            self.active += 1
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
        waiter = _Waiter()
        entry = (-priority, next(self._seq), waiter)
        heapq.heappush(self._heap, entry)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:  # we were handed a slot while being cancelled: pass it on
                self.release()
            else:
                self._heap.remove(entry)
                heapq.heapify(self._heap)
                self._signal_space()
            raise

    def release(self) -> None:
        if self._heap:  # the slot moves to the best waiter; ``active`` is unchanged
            _, _, waiter = heapq.heappop(self._heap)
            self._signal_space()
            waiter.granted = True
            waiter.event.set()
        else:
            self.active -= 1

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
