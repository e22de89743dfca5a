"""ToolExecutorOp: run the tools the message calls for, chosen deterministically."""

from __future__ import annotations

import anyio

from studio_nb.kernel import Operator
from studio_nb.messages import RoutedMessage, ToolResult
from studio_nb.services.tools import select_tool_calls


class ToolExecutorOp(Operator):
    """Selects tool calls from the intent and the text (no model involved), runs them
    concurrently in the registry's IO/CPU pools and returns their results."""

    def __init__(self) -> None:
        self.registry = None

    def warm_up(self) -> None:
        self.registry = self.need("tools")

    def skip_reason(self, msg: RoutedMessage) -> str | None:
        if not select_tool_calls(msg.intent, msg.content):
            return "no tool applies"
        return None

    async def process(self, msg: RoutedMessage) -> tuple[ToolResult, ...]:
        calls = select_tool_calls(msg.intent, msg.content)
        results: list[ToolResult | None] = [None] * len(calls)

        async def run(i: int, name: str, args: dict) -> None:
            c = await self.registry.call(name, args, user=msg.original.user)  # file/knowledge tools: per user
            results[i] = ToolResult(c.name, dict(c.arguments), c.result, c.error, c.duration_ms)

        async with anyio.create_task_group() as tg:
            for i, (name, args) in enumerate(calls):
                tg.start_soon(run, i, name, args)
        return tuple(r for r in results if r is not None)
