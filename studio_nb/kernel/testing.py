"""Tiny operators for tests, tutorials and benchmarks of the kernel (no LLMs here)."""

from __future__ import annotations

from typing import Any, AsyncIterator

import anyio

from studio_nb.kernel.context import current_request
from studio_nb.kernel.group import Branches
from studio_nb.kernel.operator import Operator


class Upper(Operator):
    def process(self, msg: str) -> str:
        return msg.upper()


class Exclaim(Operator):
    def process(self, msg: str) -> str:
        return msg + "!"


class Identity(Operator):
    """Passes its input on unchanged: the no-op used by the overhead benchmark."""

    def process(self, msg: Any) -> Any:
        return msg


class Length(Operator):
    def process(self, msg: str) -> int:
        return len(msg)


class Double(Operator):
    def process(self, msg: int) -> int:
        return msg * 2


class Sleep(Operator):
    """Async: waits ``ms`` then returns its input; appends to ``log`` (a list) if given."""

    def __init__(self, ms: float = 10.0, tag: str = "") -> None:
        self.ms = ms
        self.tag = tag
        self.log: list[tuple[str, Any]] = []

    async def process(self, msg: Any) -> Any:
        ctx = current_request()
        self.log.append(("start", ctx.request_id if ctx else None))
        await anyio.sleep(self.ms / 1000)
        self.log.append(("end", ctx.request_id if ctx else None))
        return msg


class Flaky(Operator):
    """Fails the first ``failures`` calls, then echoes; counts every call."""

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.calls = 0

    def process(self, msg: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"flaky failure {self.calls}")
        return msg


class Tokens(Operator):
    """Streams the words of its input one by one, ``delay_ms`` apart; counts what it yielded."""

    def __init__(self, delay_ms: float = 0.0) -> None:
        self.delay_ms = delay_ms
        self.yielded = 0
        self.closed = False

    async def process(self, msg: str) -> AsyncIterator[str]:
        try:
            for word in msg.split():
                if self.delay_ms:
                    await anyio.sleep(self.delay_ms / 1000)
                self.yielded += 1
                yield word
        finally:
            self.closed = True


class Collect(Operator):
    """Joins a Branches record into a sorted ``name=value`` string."""

    def process(self, msg: Branches) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(msg.results.items()))
