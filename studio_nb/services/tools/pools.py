"""Bounded worker pools for tools: one for IO-bound work, one for CPU-bound work.

Why two pools: a burst of slow CPU tools (big arithmetic, parsing) must not hold up the
IO tools (file reads, knowledge lookups) that most turns need, and vice versa. Each pool
has two bounds:

- an admission limiter (``anyio.CapacityLimiter``): calls beyond ``workers`` wait in the
  event loop, where cancelling them costs nothing and ``timeout_s`` has not started yet;
- its own executor with exactly ``workers`` workers: the hard bound on how many tool
  functions run at once. A thread cannot be killed, so a call that times out leaves its
  function running; it still occupies one of the ``workers`` until it ends, so the bound
  holds even then.

The CPU pool uses threads by default. Our CPU tools are bounded by construction (the
calculator refuses huge work before doing it) and finish in microseconds, while a
process pool costs a fork/forkserver start and pickling on every call, on machines with
two shared cores. ``backend="process"`` gives true GIL-free isolation for picklable
module-level functions; the registry falls back to threads for closures.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import multiprocessing
from typing import Any, Callable, Literal

import anyio

Backend = Literal["thread", "process"]


class ToolTimeout(Exception):
    """A tool ran past its ``timeout_s``; turned into a ToolCall error by the registry."""


class WorkerPool:
    """``workers`` concurrent runs at most; ``run`` awaits one call with a timeout."""

    def __init__(self, name: str, workers: int, backend: Backend = "thread") -> None:
        if workers < 1:
            raise ValueError(f"pool {name!r} needs at least 1 worker, got {workers}")
        self.name = name
        self.workers = workers
        self.backend = backend
        self._executor: cf.Executor | None = None
        self._limiters: dict[int, tuple[Any, anyio.CapacityLimiter]] = {}
        self.waiting = 0

    def __repr__(self) -> str:
        return f"WorkerPool({self.name!r}, workers={self.workers}, backend={self.backend!r}, waiting={self.waiting})"

    def _get_executor(self) -> cf.Executor:
        if self._executor is None:
            if self.backend == "process":
                # forkserver: never fork a process that holds model threads and locks
                ctx = multiprocessing.get_context("forkserver")
                self._executor = cf.ProcessPoolExecutor(self.workers, mp_context=ctx)
            else:
                self._executor = cf.ThreadPoolExecutor(self.workers, thread_name_prefix=f"studio-tool-{self.name}")
        return self._executor

    def limiter(self) -> anyio.CapacityLimiter:
        """The admission limiter of the running event loop (one per loop: a notebook and a
        server may each run their own loop over the same registry)."""
        loop = _current_loop()
        entry = self._limiters.get(id(loop))
        if entry is None or entry[0] is not loop:
            for key, (old, _) in list(self._limiters.items()):  # forget loops that ended (call_sync)
                if old is not None and old.is_closed():
                    del self._limiters[key]
            entry = self._limiters[id(loop)] = (loop, anyio.CapacityLimiter(self.workers))
        return entry[1]

    async def run(self, fn: Callable[..., Any], kwargs: dict, timeout_s: float) -> Any:
        """Run ``fn(**kwargs)`` in the pool; ToolTimeout after ``timeout_s`` of running."""
        limiter = self.limiter()
        self.waiting += 1
        try:
            await limiter.acquire()
        finally:
            self.waiting -= 1
        try:
            if asyncio.iscoroutinefunction(fn):
                with anyio.move_on_after(timeout_s):
                    return await fn(**kwargs)
            else:
                future = self._get_executor().submit(fn, **kwargs)
                with anyio.move_on_after(timeout_s):
                    return await _wait_future(future)
                future.cancel()  # only helps if it had not started yet
            raise ToolTimeout(f"timed out after {timeout_s:g} s")
        finally:
            limiter.release()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def _current_loop() -> Any:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # another anyio backend (trio): one limiter is enough there
        return None


async def _wait_future(future: cf.Future) -> Any:
    if _current_loop() is not None:
        return await asyncio.wrap_future(future)
    return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)
