"""The inference facade: value types, errors and the ``InferenceClient`` interface.

Operators talk to one interface whether the model runs in this process (llama.cpp) or
behind an OpenAI-compatible server, so swapping backends is a configuration change. A
backend implements one streaming loop, the async generator ``astream_chat``; the blocking
``stream_chat`` and the whole-answer ``chat`` are built on it here, once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import AsyncIterator, Iterator

from studio_nb.errors import StudioError
from studio_nb.records import Usage


@dataclass(frozen=True)
class TokenDelta:
    """A piece of streamed text; the last delta of a stream carries finish_reason and usage."""

    text: str
    finish_reason: str | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class Completion:
    """A whole answer, collected from a stream."""

    text: str
    finish_reason: str
    usage: Usage


class InferenceError(StudioError):
    """The inference backend failed; the message names the backend and the fix."""

    code = "inference_error"


class BackendUnavailableError(InferenceError, ConnectionError):
    """The backend cannot be reached (connection refused, DNS, TLS)."""

    code = "backend_unavailable"


class BackendHTTPError(InferenceError):
    """The backend answered with an HTTP error status; ``status`` holds it."""

    code = "backend_http_error"

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class BackendTimeoutError(InferenceError, TimeoutError):
    """The backend did not answer within the client's timeout."""

    code = "timeout"


class InvalidRequestError(InferenceError, ValueError):
    """The request itself is malformed (messages, max_tokens, temperature)."""

    code = "bad_request"


Messages = list[dict]
_ROLES = ("system", "user", "assistant", "tool")


def validate_request(messages: Messages, max_tokens: int, temperature: float) -> list[dict]:
    """Check a chat request before any work starts; return the messages as a plain list.

    Catching these here gives one clear error instead of a backend-specific one (a Jinja
    error from the template, an HTTP 422 from a server) after the model was already busy.
    """
    if not isinstance(messages, (list, tuple)) or not messages:
        raise InvalidRequestError("messages must be a non-empty list of {'role', 'content'} dicts")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in _ROLES or not isinstance(m.get("content"), str):
            raise InvalidRequestError(
                f"messages[{i}] must be a dict with role in {_ROLES} and a str content, got {m!r:.200}"
            )
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequestError(f"max_tokens must be a positive int, got {max_tokens!r}")
    if not isinstance(temperature, (int, float)) or temperature < 0:
        raise InvalidRequestError(f"temperature must be >= 0, got {temperature!r}")
    return list(messages)


class InferenceClient(ABC):
    """One chat model behind a streaming interface; see docs/contracts.md "Inference".

    ``__init__`` is cheap (plain values); ``warm_up`` loads or connects and is safe to
    call twice; ``close`` releases resources. Sampling defaults are greedy
    (``temperature=0``) so that answers are reproducible.
    """

    model_name: str
    n_ctx: int

    def warm_up(self) -> None:
        """Load the model / check the server. Idempotent."""

    def close(self) -> None:
        """Release the model / connections. The client may be warmed up again later."""

    @abstractmethod
    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes in the model's own tokenizer (no BOS)."""

    @abstractmethod
    def count_chat_tokens(self, messages: Messages) -> int:
        """Number of prompt tokens ``messages`` take after the chat template is applied."""

    @abstractmethod
    def astream_chat(
        self,
        messages: Messages,
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: list[str] | str | None = None,
        grammar: str | None = None,
    ) -> AsyncIterator[TokenDelta]:
        """Stream the answer: the client's one streaming loop. Closing the iterator or
        cancelling its task stops generation."""

    def stream_chat(self, messages: Messages, **options) -> Iterator[TokenDelta]:
        """Blocking form of ``astream_chat`` (same options), built once here for every client:
        the stream runs on studio-nb's background loop (``kernel.sync``, the one bridge from
        sync to async). Closing the iterator stops generation and returns once it stopped."""
        from studio_nb.kernel.sync import iterate_sync

        return iterate_sync(lambda: self.astream_chat(messages, **options))

    def chat(self, messages: Messages, **options) -> Completion:
        """The whole answer at once (takes the same keyword options as ``stream_chat``)."""
        parts: list[str] = []
        finish_reason, usage = "stop", Usage(0, 0)
        for delta in self.stream_chat(messages, **options):
            parts.append(delta.text)
            if delta.finish_reason is not None:
                finish_reason = delta.finish_reason
            if delta.usage is not None:
                usage = delta.usage
        return Completion(text="".join(parts), finish_reason=finish_reason, usage=usage)

    def __enter__(self):
        self.warm_up()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
