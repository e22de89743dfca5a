"""The kernel's tiny test operators with Ray placement hints (operator code unchanged:
only the class attribute ``placement`` differs), plus a few that exist to misbehave."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import AsyncIterator, ClassVar

from studio_nb.kernel import Operator, current_request
from studio_nb.kernel.testing import Collect, Exclaim, Flaky, Sleep, Tokens, Upper


class TaskUpper(Upper):
    placement: ClassVar[str] = "task"


class SessionExclaim(Exclaim):
    placement: ClassVar[str] = "session"


class PoolTokens(Tokens):
    placement: ClassVar[str] = "pool:llm"


class TaskTokens(Tokens):
    placement: ClassVar[str] = "task"


class RetrieverCollect(Collect):
    placement: ClassVar[str] = "pool:retriever"


class PoolSleep(Sleep):
    placement: ClassVar[str] = "pool:llm"


class PoolFlaky(Flaky):
    placement: ClassVar[str] = "pool:llm"


class PoolFlakyOnce(Flaky):
    """Has side effects: must never be retried, by the kernel or by Ray."""

    placement: ClassVar[str] = "pool:llm"
    idempotent: ClassVar[bool] = False


class SessionCounter(Operator):
    """Counts the turns it saw on its actor: ``msg|session|n|pid`` (state lives on the session actor)."""

    placement: ClassVar[str] = "session"

    def __init__(self, delay_ms: float = 0.0) -> None:
        self.delay_ms = delay_ms
        self.seen = 0

    async def process(self, msg: str) -> str:
        ctx = current_request()
        # later turns sleep less: without session ordering they would overtake earlier ones
        await asyncio.sleep(max(0.0, self.delay_ms - 20 * self.seen) / 1000)
        self.seen += 1
        return f"{msg}|{ctx.session_id}|{self.seen}|{os.getpid()}"


class GatedTokens(Operator):
    """Yields its first word, then waits until the file ``gate`` exists before the rest:
    the driver can only open the gate if it received the first word while this still runs."""

    placement: ClassVar[str] = "pool:llm"

    def __init__(self, gate: str = "", wait_s: float = 30.0) -> None:
        self.gate = gate
        self.wait_s = wait_s

    async def process(self, msg: str) -> AsyncIterator[str]:
        words = msg.split()
        yield words[0]
        for _ in range(int(self.wait_s / 0.02)):
            if Path(self.gate).exists():
                break
            await asyncio.sleep(0.02)
        else:
            raise RuntimeError("the gate never opened: the first item was not streamed back while running")
        for w in words[1:]:
            yield w


class CancelAware(Operator):
    """Sleeps ``ms``; writes ``cancelled`` or ``finished`` to ``marker`` so the test can see
    whether a timeout reached the worker."""

    placement: ClassVar[str] = "pool:llm"

    def __init__(self, ms: float = 5000.0, marker: str = "") -> None:
        self.ms = ms
        self.marker = marker

    async def process(self, msg: str) -> str:
        try:
            await asyncio.sleep(self.ms / 1000)
        except asyncio.CancelledError:
            Path(self.marker).write_text("cancelled")
            raise
        Path(self.marker).write_text("finished")
        return msg


class PoolCrash(Operator):
    """Kills its own worker process on the message ``crash`` (os._exit, no cleanup)."""

    placement: ClassVar[str] = "pool:llm"

    def process(self, msg: str) -> str:
        if msg == "crash":
            os._exit(1)
        return f"ok:{msg}"


class TaskCrash(PoolCrash):
    placement: ClassVar[str] = "task"
    idempotent: ClassVar[bool] = False
