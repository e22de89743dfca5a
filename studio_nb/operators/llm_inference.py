"""LLMInferenceOp: stream the answer token by token from the configured model."""

from __future__ import annotations

from typing import AsyncIterator

from studio_nb.kernel import Operator
from studio_nb.messages import LLMRequest, StreamChunk, Usage
from studio_nb.services import shared


class LLMInferenceOp(Operator):
    """Every delta is streamed to the caller as a StreamChunk; the last chunk carries the
    whole text, the finish reason and token usage, and travels on to the guardrail.

    Cancellation (a stop button, a closed socket) closes this generator, which closes
    the client's stream, which stops llama.cpp between two tokens.
    """

    def __init__(self, llm: dict | None = None) -> None:
        self.llm = llm
        self.client = None

    def warm_up(self) -> None:
        self.client = shared.inference_client(self.llm)
        self.client.warm_up()

    async def process(self, msg: LLMRequest) -> AsyncIterator[StreamChunk]:
        original = msg.context.routed.original
        text, finish, usage = "", None, None
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
        finally:
            await stream.aclose()
        yield StreamChunk(
            "",
            original.session_id,
            original.request_id,
            is_final=True,
            text=text,
            finish_reason=finish,
            usage=usage or Usage(msg.prompt_tokens, 0),
            attempt=msg.attempt,
            request=msg,
        )
