"""The Turn: one question and its answer, the only object front ends see (DESIGN §1).

    turn = pipe.ask("what is a ParallelGroup?", session_id="demo")   # returns at once
    for part in turn: ...          # StepEvent, Evidence, TextDelta ... then the Response
    turn.text()                    # waits for the whole answer
    list(turn)                     # again: replayed from the buffer, nothing runs twice
    async for part in turn: ...    # the same from async code (a WebSocket handler)
    turn.stop()                    # cancels the running operator (generation stops)

Like simonw/llm's ``Response``: the work runs once, on studio-nb's background event loop
(``kernel.sync``), and every part it produces is appended to a buffer. Any number of
readers, sync or async, on any thread or loop, read that buffer from the start and then
wait for the next part — a ``threading.Condition`` for sync readers, a future completed
with ``call_soon_threadsafe`` for async ones, so nobody polls.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, AsyncIterator, Callable, Iterator

from studio_nb.kernel.sync import background_loop, on_background_loop

Part = Any  # StepEvent | Evidence | TextDelta | Response


class TurnStopped(Exception):
    """Raised by ``response``/``wait`` for a turn that was stopped before it finished."""


class Turn:
    """One question being answered; see the module docstring."""

    def __init__(self, question: str, *, session_id: str, request_id: str, user: str = "local") -> None:
        self.question = question
        self.session_id = session_id
        self.request_id = request_id
        self.user = user
        self.started_at = time.time()
        self.first_content_s: float | None = None  # question -> first evidence or text
        self.duration_s: float | None = None
        self._t0 = time.perf_counter()
        self._parts: list[Part] = []
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._done = False
        self._error: BaseException | None = None
        self._stopped = False
        self._response: Any = None
        self._future: Any = None  # concurrent.futures.Future of the producing task

    # ------------------------------------------------------------------ producing
    def start(self, produce: Callable[["Turn"], AsyncIterator[Part]]) -> "Turn":
        """Run ``produce(self)`` on the background loop; every item it yields becomes a part."""
        self._future = asyncio.run_coroutine_threadsafe(self._run(produce), background_loop())
        return self

    async def _run(self, produce: Callable[["Turn"], AsyncIterator[Part]]) -> None:
        try:
            async for part in produce(self):
                self._append(part)
        except asyncio.CancelledError:
            self._stopped = True
        except BaseException as exc:  # delivered to every reader
            self._error = exc
        finally:
            self._finish()

    def _append(self, part: Part) -> None:
        from studio_nb.messages import Evidence, Response, TextDelta

        if self.first_content_s is None and (isinstance(part, Evidence) or (isinstance(part, TextDelta) and part.content)):
            self.first_content_s = time.perf_counter() - self._t0
        if isinstance(part, Response):
            self._response = part
        with self._cond:
            self._parts.append(part)
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            _wake(loop, fut)

    def _finish(self) -> None:
        self.duration_s = time.perf_counter() - self._t0
        with self._cond:
            self._done = True
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            _wake(loop, fut)

    def stop(self) -> None:
        """Cancel the turn: the running operator is cancelled and generation stops."""
        if self._future is not None and not self._future.done():
            self._stopped = True
            self._future.cancel()

    # ------------------------------------------------------------------ reading
    def __iter__(self) -> Iterator[Part]:
        if on_background_loop():
            raise RuntimeError("iterate a Turn with `async for` inside studio-nb's event loop")
        i = 0
        while True:
            with self._cond:
                while i >= len(self._parts) and not self._done:
                    self._cond.wait()
                if i >= len(self._parts):
                    break
                part = self._parts[i]
            i += 1
            yield part
        self._raise_error()

    async def __aiter__(self) -> AsyncIterator[Part]:
        loop = asyncio.get_running_loop()
        i = 0
        while True:
            with self._cond:
                if i < len(self._parts):
                    part, fut = self._parts[i], None
                elif self._done:
                    break
                else:
                    part, fut = None, loop.create_future()
                    self._waiters.append((loop, fut))
            if fut is not None:
                await fut
                continue
            i += 1
            yield part
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def wait(self, timeout: float | None = None) -> "Turn":
        """Block until the turn has ended (answered, failed or stopped); returns self."""
        if on_background_loop():
            raise RuntimeError("wait for a Turn with `await turn` inside studio-nb's event loop")
        with self._cond:
            if not self._cond.wait_for(lambda: self._done, timeout):
                raise TimeoutError(f"turn {self.request_id} still running after {timeout} s")
        return self

    def __await__(self):
        async def response() -> Any:
            async for _ in self:
                pass
            return self.response

        return response().__await__()

    # ------------------------------------------------------------------ results
    @property
    def done(self) -> bool:
        return self._done

    @property
    def stopped(self) -> bool:
        return self._stopped

    @property
    def error(self) -> BaseException | None:
        return self._error

    @property
    def parts(self) -> list[Part]:
        """The parts produced so far (a copy)."""
        with self._cond:
            return list(self._parts)

    @property
    def response(self) -> Any:
        """The final ``Response`` (waits for it); raises the turn's error, or TurnStopped."""
        if not self._done:
            self.wait()
        self._raise_error()
        if self._response is None:
            raise TurnStopped(f"turn {self.request_id} was stopped before it finished")
        return self._response

    def text(self) -> str:
        """The whole answer as plain text (waits). A stopped turn gives what it had so far."""
        if not self._done:
            self.wait()
        self._raise_error()
        if self._response is None:
            return self.partial_text()
        return self._response.text

    def partial_text(self) -> str:
        """The generated text so far (a retry's restart clears it), without waiting."""
        from studio_nb.messages import TextDelta

        text = ""
        for part in self.parts:
            if isinstance(part, TextDelta):
                text = part.content if part.restart else text + part.content
        return text

    @property
    def evidence(self) -> Any:
        """The Evidence part (None before it arrives, or for an answer without evidence)."""
        from studio_nb.messages import Evidence

        return next((p for p in self.parts if isinstance(p, Evidence)), None)

    # the Response's fields, for convenience (each waits for the answer)
    sources = property(lambda self: self.response.sources, doc="the retrieved chunks the answer drew on")
    timings = property(lambda self: self.response.timings, doc="milliseconds per operator")
    usage = property(lambda self: self.response.usage, doc="prompt and completion tokens")
    attempts = property(lambda self: self.response.attempts, doc="how many times the model answered")
    intent = property(lambda self: self.response.intent, doc="the routed intent")
    synthesis = property(lambda self: self.response.synthesis, doc="the checked generated part")
    dropped = property(lambda self: self.response.dropped, doc="generated sentences dropped as unsupported")
    tool_calls = property(lambda self: self.response.tool_calls, doc="tools run for this turn")

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else ("failed" if self._error else ("done" if self._done else "running"))
        return f"<Turn {self.request_id} {state}: {self.question[:60]!r}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        from studio_nb import present

        return present.mimebundle(self)

    def to_dict(self) -> dict[str, Any]:
        from studio_nb import present

        return present.to_json(self)


def _wake(loop: asyncio.AbstractEventLoop, fut: asyncio.Future) -> None:
    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    try:
        loop.call_soon_threadsafe(wake)
    except RuntimeError:  # the reader's loop is closed: nobody is waiting any more
        pass
