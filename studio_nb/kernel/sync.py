"""The one bridge from synchronous code to async code, usable inside a running event loop.

Jupyter kernels already run an event loop in the main thread, so ``asyncio.run`` fails
there. Every synchronous entry point (``op(x)``, ``pipeline.run(x)``, a Turn, the magic,
the panel, ``ToolRegistry.call_sync``) therefore hands its coroutine to one background
loop thread owned by studio-nb. A single loop also keeps loop-bound state (locks, queues
of the engine) on one loop. Nothing here polls: readers block on thread primitives that
the loop signals.

A process that already runs an event loop for its front ends — the Jupyter server — makes
that loop studio-nb's one loop instead (``use_loop``), before any turn runs: every turn of
the process (WebSocket chats, REST replays, the JupyterLab chat member) then runs on the
loop that reads it, and a token crosses no thread between the model client and the socket.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from typing import AsyncIterator, Awaitable, Callable, Iterator, TypeVar

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared loop: the one given to ``use_loop``, else started on first use in a daemon thread."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=run, name="studio-nb-loop", daemon=True).start()
            ready.wait()
            _loop = loop
        return _loop


def use_loop(loop: asyncio.AbstractEventLoop) -> bool:
    """Make ``loop`` (one this process already runs, such as Jupyter server's) studio-nb's
    loop; returns whether it is now.

    Only while studio-nb has no live loop of its own: the engine's locks, events and queues
    belong to the loop that first used them, so a live loop is never replaced (False). Once
    ``loop`` closes, ``background_loop`` starts a thread of its own again. Blocking work
    stays off it as before: operators marked ``blocking`` and the sync entry points run in
    worker threads, and ``run_sync`` called on the loop itself raises instead of deadlocking.
    """
    global _loop
    with _lock:
        if _loop is loop:
            return True
        if _loop is not None and not _loop.is_closed():
            return False
        _loop = loop
        return True


def on_background_loop() -> bool:
    """True when called from a task on studio-nb's own loop (where blocking would deadlock)."""
    try:
        return asyncio.get_running_loop() is _loop
    except RuntimeError:
        return False


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run ``factory()`` on the background loop and wait; Ctrl-C cancels the work."""
    if on_background_loop():
        raise RuntimeError("run_sync() called from the studio-nb loop itself; use the async API (await ...acall())")
    future = asyncio.run_coroutine_threadsafe(_as_coro(factory), background_loop())
    try:
        return future.result()
    except KeyboardInterrupt:
        future.cancel()
        raise


async def _as_coro(factory: Callable[[], Awaitable[T]]) -> T:
    return await factory()


_DONE = object()
#: how long leaving ``iterate_sync`` early waits for the stream's clean-up
CLOSE_WAIT_S = 10.0


def iterate_sync(factory: Callable[[], AsyncIterator[T]], buffer: int = 256) -> Iterator[T]:
    """Iterate an async iterator from synchronous code, item by item as they arrive.

    One task on the background loop drives the whole async iterator (so cancel scopes
    inside it stay in one task). At most ``buffer`` items wait unread: the producer then
    awaits a semaphore that the reader releases (back-pressure without polling). Leaving
    the ``for`` loop early, or Ctrl-C, cancels the task and waits (up to ``CLOSE_WAIT_S``)
    until its clean-up ran, so nothing it started keeps running behind the caller.
    """
    if on_background_loop():
        raise RuntimeError("iterate_sync() called from the studio-nb loop itself; use `async for`")
    items: queue.Queue = queue.Queue()
    loop = background_loop()
    space: asyncio.Semaphore | None = None
    started, ended = threading.Event(), threading.Event()

    async def pump() -> None:
        nonlocal space
        started.set()
        space = asyncio.Semaphore(buffer)
        stream = None
        try:
            stream = factory()
            async for item in stream:
                await space.acquire()
                items.put((True, item))
        except BaseException as exc:  # delivered to the reader, including cancellation
            items.put((False, exc))
            if not isinstance(exc, Exception):
                raise
        else:
            items.put((True, _DONE))
        finally:
            try:  # cancelled between two items: the stream's own clean-up still runs, now
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    await aclose()
            finally:
                ended.set()

    future = asyncio.run_coroutine_threadsafe(pump(), loop)
    finished = False
    try:
        while True:
            ok, item = items.get()
            if not ok:
                finished = True
                raise item
            if item is _DONE:
                finished = True
                return
            loop.call_soon_threadsafe(space.release)
            yield item
    finally:
        if not finished:
            future.cancel()
            if started.is_set():
                ended.wait(CLOSE_WAIT_S)


def maybe_running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


__all__ = ["background_loop", "iterate_sync", "maybe_running_loop", "on_background_loop", "run_sync"]
