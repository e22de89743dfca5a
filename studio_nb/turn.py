"""The Turn: one question and its answer, the only object front ends see (DESIGN §1).

    turn = pipe.ask("what is a ParallelGroup?", session_id="demo")   # returns at once
    for part in turn: ...          # StepEvent, Evidence, TextDelta ... then the Response
    turn.text()                    # waits for the whole answer
    list(turn)                     # again: replayed from the buffer, nothing runs twice
    async for part in turn: ...    # the same from async code (a WebSocket handler)
    turn.stop()                    # cancels the running operator (generation stops)
    turn.trace                     # every operator run: input, output, status, time
    turn.paused_at, turn.pending   # at a breakpoint (pipe.breakpoint): where, and what waits
    turn.resume(msg=None)          # go on (with an edited message); turn.snapshot() -> JSON

Like simonw/llm's ``Response``: the work runs once, on studio-nb's background event loop
(``kernel.sync``), and every part it produces is appended to a buffer. Any number of
readers, sync or async, on any thread or loop, read that buffer from the start and then
wait for the next part — a ``threading.Condition`` for sync readers, a future completed
with ``call_soon_threadsafe`` for async ones, so nobody polls.

At a breakpoint the pipeline awaits ``Turn.on_pause`` (on the background loop, holding no
model slot); ``resume`` completes that await from any thread. The Turn knows nothing of
the debugger: ``bind(context, debugger)`` hands it the request's context and the one
object that checks a message given to ``resume`` and writes a ``snapshot``
(``studio_nb.debug.api.Debugger``, or any object with those two methods).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, AsyncIterator, Callable, Iterator

from studio_nb.kernel.sync import background_loop, on_background_loop
from studio_nb.view import View

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
        #: the one live view of the answer: every part is folded in as it arrives (studio_nb/view.py)
        self.view = View(question=question)
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        self._done = False
        self._error: BaseException | None = None
        self._stopped = False
        self._response: Any = None
        self._future: Any = None  # concurrent.futures.Future of the producing task
        #: the request id of the turn this one replays (None for a question asked)
        self.replay_of: str | None = None
        self._trace: Any = None  # the request's trace (``bind``), or a stored one (``restored``)
        self._ctx: Any = None  # the kernel RequestContext, while and after the turn runs
        self._paused: tuple[str, int, Any] | None = None  # (node, visit, pending message)
        self._resume: tuple[asyncio.AbstractEventLoop, asyncio.Future] | None = None
        self._debugger: Any = None  # checks what ``resume`` hands on; writes ``snapshot``
        self.stored_trace: dict[str, Any] | None = None  # the trace's JSON as saved with the turn

    # ------------------------------------------------------------------ producing
    def bind(self, context: Any, debugger: Any = None) -> "Turn":
        """Attach the kernel ``context`` of this turn's request (its trace comes with it) and
        the ``debugger`` that checks ``resume(msg)`` and writes ``snapshot()``."""
        self._ctx, self._trace, self._debugger = context, context.trace, debugger
        return self

    def start(self, produce: Callable[["Turn"], AsyncIterator[Part]]) -> "Turn":
        """Run ``produce(self)`` on studio-nb's loop (``kernel.sync``); every item it yields becomes a part."""
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
            self.view.add(part)
            self._parts.append(part)
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            _wake(loop, fut)

    def _finish(self) -> None:
        self.duration_s = time.perf_counter() - self._t0
        if self._response is None and (self._stopped or self._error is not None):
            self.view.note = "stopped" if self._stopped else f"error: {getattr(self._error, 'code', type(self._error).__name__)}"
        with self._cond:
            self._done = True
            self._cond.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            _wake(loop, fut)

    def stop(self) -> None:
        """Cancel the turn: the running operator is cancelled and generation stops."""
        if self._future is not None and not self._future.done():
            with self._cond:  # a paused turn is no longer paused, from now on
                self._stopped = True
                self._paused = self._resume = None
                if self._response is None:
                    self.view.note = "stopped"
                self._cond.notify_all()
            self._future.cancel()

    # ------------------------------------------------------------------ breakpoints
    async def on_pause(self, node: str, visit: int, value: Any) -> Any:
        """The kernel's ``on_pause`` for this turn's request: wait here until ``resume`` (or ``stop``)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        pause = (node, visit, value)
        with self._cond:
            self._paused, self._resume = pause, (loop, fut)
            self._cond.notify_all()
        try:
            return await fut
        finally:
            with self._cond:
                if self._paused is pause:  # stopped while paused: nothing waits any more
                    self._paused = self._resume = None

    @property
    def state(self) -> str:
        """"running", "paused at <operator>", "done", "failed" or "stopped" (never waits)."""
        if self._paused is not None:
            return f"paused at {self._paused[0]}"
        return "stopped" if self._stopped else ("failed" if self._error else ("done" if self._done else "running"))

    def _wait_pause(self, timeout: float | None) -> tuple[str, int, Any] | None:
        if on_background_loop():
            raise RuntimeError("paused_at/pending wait for the turn; use them outside studio-nb's event loop")
        with self._cond:
            if not self._cond.wait_for(lambda: self._paused is not None or self._done, timeout):
                raise TimeoutError(f"turn {self.request_id} neither paused nor ended within {timeout} s")
            return self._paused

    @property
    def paused_at(self) -> str | None:
        """The operator the turn waits before (a breakpoint), or None once it has ended.
        Waits until the turn pauses or ends."""
        pause = self._wait_pause(None)
        return pause[0] if pause is not None else None

    @property
    def pending(self) -> Any:
        """The message about to enter the paused operator (None once the turn has ended);
        waits like ``paused_at``. Pass an edited copy to ``resume`` to change it."""
        pause = self._wait_pause(None)
        return pause[2] if pause is not None else None

    def resume(self, msg: Any = None) -> "Turn":
        """Go on from the breakpoint, with ``msg`` instead of the pending message if given."""
        with self._cond:
            if self._paused is None:
                from studio_nb.errors import TurnStateError

                raise TurnStateError(f"turn {self.request_id} is not paused (it is {self.state}); "
                                     "only a turn stopped at a breakpoint can be resumed (see turn.paused_at)")
            node, _, value = self._paused
            if msg is not None and self._debugger is not None:
                self._debugger.check_pending(node, msg)
            (loop, fut), self._paused, self._resume = self._resume, None, None
        new = value if msg is None else msg
        loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(new))
        return self

    def snapshot(self, path: str | None = None) -> dict[str, Any]:
        """The paused turn as JSON (its trace so far and the pending message), to continue
        later with ``pipe.resume(snapshot)`` — in this process or another one. Written to
        ``path`` too if given. The turn itself stays paused: ``stop()`` or ``resume()`` it."""
        with self._cond:
            pause = self._paused
        if pause is None or self._ctx is None or self._debugger is None:
            from studio_nb.errors import TurnStateError

            raise TurnStateError(f"turn {self.request_id} is not paused (it is {self.state}); a snapshot is "
                                 "taken at a breakpoint (pipe.breakpoint(name), then turn.paused_at)")
        doc = self._debugger.snapshot(self, pause[0], pause[1], pause[2], self._ctx)
        if path is not None:
            import json

            with open(path, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, ensure_ascii=False)
        return doc

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
    def trace(self) -> Any:
        """Every operator run of this turn, in order: input and output messages, status,
        duration, attempt, and whether it ran, was skipped or was reused (a replay). Shows
        as a timeline in a notebook; grows while the turn runs."""
        return self._trace

    @property
    def is_paused(self) -> bool:
        """Whether the turn waits at a breakpoint now (never waits, unlike ``paused_at``)."""
        return self._paused is not None

    @property
    def answered(self) -> bool:
        """Whether the final Response has arrived (never waits)."""
        return self._response is not None

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
        return self.view.text

    @property
    def evidence(self) -> Any:
        """The Evidence part (None before it arrives, or for an answer without evidence)."""
        return self.view.evidence

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
        replay = f" (replay of {self.replay_of})" if self.replay_of else ""
        return f"<Turn {self.request_id}{replay} {self.state}: {self.question[:60]!r}>"

    @classmethod
    def restored(cls, question: str, *, session_id: str, request_id: str, user: str, trace: Any) -> "Turn":
        """A finished turn rebuilt from its stored trace (after a restart): inspect it, replay it."""
        turn = cls(question, session_id=session_id, request_id=request_id, user=user)
        turn._trace = trace
        response = trace.response
        evidence = trace.evidence
        for part in (evidence, response):
            if part is not None:
                turn._append(part)
        turn._finish()
        turn.duration_s = None
        return turn

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
