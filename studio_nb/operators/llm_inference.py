"""LLMInferenceOp: stream the answer token by token from the configured model."""

from __future__ import annotations

from typing import AsyncIterator

from studio_nb.kernel import Operator
from studio_nb.messages import LLMRequest, StreamChunk, Usage
from studio_nb.services.evidence.loops import find_loop


class LLMInferenceOp(Operator):
    """Every delta is streamed to the caller as a StreamChunk; the last chunk carries the
    whole text, the finish reason and token usage, and travels on to the guardrail.

    Cancellation (a stop button, a closed socket) closes this generator, which closes
    the client's stream, which stops llama.cpp between two tokens. The same mechanism
    ends an answer early once it starts looping (``stop_on_loop``), with
    ``finish_reason="loop"``; the guardrail then asks for a new one.
    """

    def __init__(self, stop_on_loop: bool = True) -> None:
        self.stop_on_loop = stop_on_loop
        self.client = None

    def warm_up(self) -> None:
        self.client = self.need("llm")
        self.client.warm_up()

    async def process(self, msg: LLMRequest) -> AsyncIterator[StreamChunk]:
        original = msg.context.routed.original
        text, finish, usage, checked = "", None, None, 0
        stream = self.client.astream_chat(
            list(msg.messages), max_tokens=msg.max_tokens, temperature=msg.temperature, seed=msg.seed
        )
        try:
            async for delta in stream:
                if delta.usage is not None:
                    usage = Usage(delta.usage.prompt_tokens, delta.usage.completion_tokens)
                finish = delta.finish_reason or finish
                if delta.text:
                    text += delta.text
                    yield StreamChunk(delta.text, original.session_id, original.request_id, text=text, attempt=msg.attempt)
                    checked += 1
                    if self.stop_on_loop and checked % 16 == 0 and find_loop(text) is not None:
                        finish = "loop"  # small models loop; stop paying for it, the guardrail decides
                        break
        finally:
            await stream.aclose()
        yield StreamChunk(
            "",
            original.session_id,
            original.request_id,
            is_final=True,
            text=text,
            finish_reason=finish,
            usage=usage or Usage(msg.prompt_tokens, checked),
            attempt=msg.attempt,
            request=msg,
        )
