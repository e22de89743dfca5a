"""``ScriptedClient``: a chat "model" that answers from a script, for tests of logic that
is not about the model.

A test of the retry loop, of how a front end renders a code block or of what happens when
a model echoes its prompt needs a model that says exactly what the test needs, every
time; the bundled model says what greedy decoding over today's prompt makes it say, which
changes with the evidence, the prompt and the build. This client is configured like any
backend (``llm: {backend: scripted, replies: [...]}``), so it goes through the same
factory, operators and stream as the real one; the end-to-end tests keep the real model.

Each request takes the next reply of ``replies`` (the last one is repeated once the
script runs out); ``echo="last_user"`` answers with the request's last user message and
``echo="prompt"`` with every message's content, one after another (what a model that
repeats its prompt would show). A reply is streamed word by word, with the spaces kept,
so a consumer sees many deltas. Tokens are counted as whitespace-separated words.
"""

from __future__ import annotations

import asyncio
import re
import threading
from typing import AsyncIterator, Sequence

from studio_nb.errors import ConfigError
from studio_nb.services.inference.base import InferenceClient, Messages, TokenDelta, Usage, validate_request

_PIECES = re.compile(r"\S+\s*|\s+")
ECHO_MODES = (None, "last_user", "prompt")


def _count(text: str) -> int:
    return len(text.split())


class ScriptedClient(InferenceClient):
    """Answers from ``replies`` in order (see the module docstring); ``requests`` keeps the
    messages of every request it was sent, for a test to read."""

    def __init__(self, replies: Sequence[str] = ("Scripted answer.",), echo: str | None = None,
                 n_ctx: int = 8192, model_name: str = "scripted") -> None:
        if isinstance(replies, str) or not all(isinstance(r, str) for r in replies):
            raise ConfigError("scripted replies must be a list of strings")
        if echo not in ECHO_MODES:
            raise ConfigError(f"scripted echo must be one of {ECHO_MODES}, got {echo!r}")
        if not replies and echo is None:
            raise ConfigError("a scripted client needs replies or an echo mode")
        self.replies = list(replies)
        self.echo = echo
        self.n_ctx = n_ctx
        self.model_name = model_name
        self.requests: list[list[dict]] = []
        self._lock = threading.Lock()

    def count_tokens(self, text: str) -> int:
        return _count(text)

    def count_chat_tokens(self, messages: Messages) -> int:
        return sum(_count(m["content"]) + 2 for m in messages) + 3

    def _reply(self, messages: Messages) -> str:
        with self._lock:
            self.requests.append([dict(m) for m in messages])
            if self.echo == "last_user":
                return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
            if self.echo == "prompt":
                return "\n".join(m["content"] for m in messages)
            n = len(self.requests) - 1
            return self.replies[min(n, len(self.replies) - 1)]

    async def astream_chat(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0,
                           seed: int | None = None, stop: list[str] | str | None = None,
                           grammar: str | None = None) -> AsyncIterator[TokenDelta]:
        messages = validate_request(messages, max_tokens, temperature)
        pieces = _PIECES.findall(self._reply(messages))
        finish = "length" if sum(1 for p in pieces if p.strip()) > max_tokens else "stop"
        out, words = [], 0
        for piece in pieces:
            if piece.strip():
                if words == max_tokens:
                    break
                words += 1
            out.append(piece)
        usage = Usage(self.count_chat_tokens(messages), words)
        for i, piece in enumerate(out):
            last = i == len(out) - 1
            await asyncio.sleep(0)  # a real stream yields to the loop between tokens
            yield TokenDelta(piece, finish if last else None, usage if last else None)
        if not out:
            yield TokenDelta("", finish, usage)
