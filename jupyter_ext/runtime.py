"""The server's one Studio pipeline: built and warmed in the background, shared by handlers.

Server start must not wait for models to load, so :meth:`StudioRuntime.start` hands the
factory call and ``warm_up()`` to a worker thread and returns at once. Handlers await
:meth:`pipeline` (built: cheap, enough for the graph) or :meth:`ready` (warmed: needed to
chat). The same object counts requests in flight per user and in total; both caps answer
``busy`` rather than queueing without bound.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from studio_nb.errors import BusyError

log = logging.getLogger(__name__)


def load_factory(spec: str) -> Callable[..., Any]:
    """``"package.module:function"`` -> the function (the pipeline factory is configurable)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"pipeline factory {spec!r} must look like 'package.module:function'")
    return getattr(importlib.import_module(module_name), attr)


class StudioRuntime:
    def __init__(
        self,
        factory: Callable[[], Any],
        *,
        max_per_user: int = 4,
        max_total: int = 16,
        warm_up: bool = True,
    ) -> None:
        self._factory = factory
        self._warm = warm_up
        self.max_per_user = max_per_user
        self.max_total = max_total
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-warm-up")
        self._built: Future = Future()
        self._ready: Future = Future()
        self._started = False
        self.in_flight: dict[str, int] = {}
        self.total = 0
        self.build_s: float | None = None
        self.warm_up_s: float | None = None
        self.warm_up_progress: dict[str, Any] | None = None  # the last finished warm-up step
        #: where turns run: "server" (the server's own loop) or "background" (studio-nb's loop thread)
        self.turn_loop = "background"
        self._started_at = time.perf_counter()

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Build and warm the pipeline on a worker thread; returns immediately."""
        if not self._started:
            self._started = True
            self._executor.submit(self._build_and_warm)

    def _build_and_warm(self) -> None:
        t0 = self._started_at = time.perf_counter()
        try:
            pipe = self._factory()
        except BaseException as exc:  # reported to every waiter, never lost in a thread
            log.exception("building the Studio pipeline failed")
            self._built.set_exception(exc)
            self._ready.set_exception(exc)
            return
        self.build_s = time.perf_counter() - t0
        self._built.set_result(pipe)
        try:
            if self._warm:
                pipe.warm_up(progress=False, on_step=self._progress)
        except BaseException as exc:
            log.exception("warming up the Studio pipeline failed")
            self._ready.set_exception(exc)
            return
        self.warm_up_s = time.perf_counter() - t0
        log.info("Studio pipeline ready in %.2f s", self.warm_up_s)
        self._ready.set_result(pipe)

    def _progress(self, step: str, done: int, total: int) -> None:
        """Called by the warm-up thread after each step (shown by health and the page)."""
        self.warm_up_progress = {"step": step, "done": done, "total": total,
                                 "elapsed_s": round(time.perf_counter() - self._started_at, 2)}

    async def pipeline(self) -> Any:
        """The built pipeline (models may still be loading)."""
        self.start()
        return await asyncio.wrap_future(self._built)

    async def ready(self) -> Any:
        """The warmed pipeline; the first chat after start waits here."""
        self.start()
        return await asyncio.wrap_future(self._ready)

    @property
    def is_ready(self) -> bool:
        return self._ready.done() and self._ready.exception() is None

    def state(self) -> dict[str, Any]:
        if self._ready.done():
            exc = self._ready.exception()
            status = "ready" if exc is None else "failed"
        else:
            status = "warming" if self._started else "idle"
        out: dict[str, Any] = {
            "status": status,
            "build_s": self.build_s,
            "warm_up_s": self.warm_up_s,
            "warm_up_progress": self.warm_up_progress,
            "requests_in_flight": self.total,
            "max_requests_total": self.max_total,
            "max_requests_per_user": self.max_per_user,
            "turn_loop": self.turn_loop,
        }
        if status == "failed":
            exc = self._ready.exception()
            out["error"] = {"code": getattr(exc, "code", "internal"), "message": str(exc)}
        return out

    def close(self) -> None:
        """Close the pipeline if it was built (waits for a warm-up in progress)."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._built.done() and self._built.exception() is None:
            try:
                self._built.result().close()
            except Exception:
                log.exception("closing the Studio pipeline failed")

    # ---------------------------------------------------------------- admission
    def acquire(self, user: str) -> Callable[[], None]:
        """Take one request slot for ``user``; returns its (idempotent) release function.

        Raises BusyError when the per-user or total cap is reached. Handlers run on the
        server's event loop only, so plain counters suffice.
        """
        mine = self.in_flight.get(user, 0)
        if mine >= self.max_per_user:
            raise BusyError(
                f"you already have {mine} requests running (limit {self.max_per_user}); "
                "wait for one to finish or stop it"
            )
        if self.total >= self.max_total:
            raise BusyError(f"the server is answering {self.total} requests (limit {self.max_total}); retry shortly")
        self.in_flight[user] = mine + 1
        self.total += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.total -= 1
            left = self.in_flight[user] - 1
            if left:
                self.in_flight[user] = left
            else:
                del self.in_flight[user]

        return release
