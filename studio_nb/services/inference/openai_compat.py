"""``OpenAICompatibleClient``: a chat model behind an OpenAI-compatible HTTP server.

Works with llama.cpp's server, llama-cpp-python's ``llama_cpp.server``, vLLM, Ollama.
Answers stream as Server-Sent Events (``data: {...}`` lines of
``/v1/chat/completions`` with ``stream=true``). Closing the stream closes the HTTP
response, which is how these servers learn that the client is gone and stop generating.

Token counts come from the server when it can give them: ``/extras/tokenize/count``
(llama-cpp-python) for ``count_tokens`` and the ``usage`` chunk (``stream_options``) for
a request. Otherwise they are *approximations*, documented on each method; the chat
template of a remote model is unknown, so ``count_chat_tokens`` always is one.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import AsyncIterator

from studio_nb.errors import ConfigError
from studio_nb.services.inference.base import (
    BackendHTTPError,
    BackendTimeoutError,
    BackendUnavailableError,
    InferenceClient,
    InferenceError,
    Messages,
    TokenDelta,
    Usage,
    validate_request,
)

# Approximate template overhead (ChatML-like): start/end markers around each message
# plus the assistant header that opens the answer.
_TOKENS_PER_MESSAGE = 2
_TOKENS_FOR_REPLY = 3


def approximate_token_count(text: str) -> int:
    """An upper-leaning estimate when the server cannot tokenize: ASCII ~3 chars/token,
    other characters at most one token per UTF-8 byte (byte-level BPE never exceeds it)."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    other_bytes = len(text.encode("utf-8")) - ascii_chars
    return math.ceil(ascii_chars / 3) + other_bytes


def check_status(status: int, body: bytes, url: str) -> None:
    """Raise BackendHTTPError for an HTTP error status, with the fix that status usually needs."""
    if status < 400:
        return
    hint = {
        401: "check api_key",
        403: "check api_key",
        404: "check base_url (the server root or .../v1) and the model name",
        422: "the server rejected the request fields; check max_tokens/stop/grammar support",
    }.get(status, "see the server's log" if status >= 500 else "check the request")
    detail = body[:300].decode("utf-8", "replace").strip()
    raise BackendHTTPError(f"{url} answered HTTP {status}: {detail}; fix: {hint}", status=status)


def chat_request_body(model: str, messages: Messages, max_tokens: int, temperature: float, seed: int | None,
                      stop: list[str] | str | None, grammar: str | None) -> dict:
    """The ``/v1/chat/completions`` body of a streamed request (checked: ``validate_request``)."""
    body = {
        "model": model,
        "messages": validate_request(messages, max_tokens, temperature),
        "max_tokens": max_tokens,
        "temperature": temperature,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if seed is not None:
        body["seed"] = seed
    if stop:
        body["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if grammar is not None:
        body["grammar"] = grammar  # llama.cpp servers; vLLM calls it guided_grammar
    user = _request_user()
    if user:
        body["user"] = user  # OpenAI's end-user field: the model process shares its copies fairly by it
    return body


class OpenAICompatibleClient(InferenceClient):
    """Streams chat completions from ``base_url`` (with or without the trailing ``/v1``)."""

    def __init__(
        self,
        base_url: str,
        model: str = "default",
        api_key: str | None = None,
        timeout_s: float = 60,
        n_ctx: int = 2048,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must be an http(s) URL such as http://127.0.0.1:8000, got {base_url!r}")
        if not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
            raise ConfigError(f"timeout_s must be a positive number, got {timeout_s!r}")
        root = base_url.rstrip("/")
        self.root_url = root[: -len("/v1")] if root.endswith("/v1") else root
        self.base_url = self.root_url + "/v1"
        self.model = self.model_name = model
        self.api_key = api_key
        self.timeout_s = float(timeout_s)
        self.n_ctx = n_ctx  # the server's context size is not discoverable everywhere; say it here
        self._client = None  # httpx.Client, shared by threads
        self._ssl = None  # one SSL context for every per-call AsyncClient (creating one costs ~20 ms)
        self._can_tokenize: bool | None = None

    def __repr__(self) -> str:
        return f"OpenAICompatibleClient({self.base_url!r}, model={self.model!r})"

    # -- plumbing --------------------------------------------------------------------

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def _sync(self):
        if self._client is None:
            import httpx

            self._ssl = self._ssl or httpx.create_ssl_context()
            self._client = httpx.Client(timeout=self.timeout_s, headers=self._headers(), verify=self._ssl)
        return self._client

    def _async(self):
        import httpx

        self._ssl = self._ssl or httpx.create_ssl_context()
        return httpx.AsyncClient(timeout=self.timeout_s, headers=self._headers(), verify=self._ssl)

    def _translate(self, exc: Exception, url: str) -> InferenceError:
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return BackendTimeoutError(
                f"the inference server at {url} did not answer within {self.timeout_s:g} s; "
                "fix: check the server is not overloaded, or raise timeout_s"
            )
        return BackendUnavailableError(
            f"cannot reach the inference server at {url} ({type(exc).__name__}: {exc}); "
            "fix: start it (e.g. python -m llama_cpp.server --model <file.gguf>) or correct base_url"
        )

    # -- lifecycle -------------------------------------------------------------------

    def warm_up(self) -> None:
        """Check the server answers ``/v1/models``; raises a clear error if not."""
        import httpx

        url = self.base_url + "/models"
        try:
            response = self._sync().get(url)
        except httpx.HTTPError as exc:
            raise self._translate(exc, url) from exc
        check_status(response.status_code, response.content, url)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- tokens ----------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """The server's tokenizer via ``/extras/tokenize/count`` (llama-cpp-python's server);
        where that endpoint is missing, ``approximate_token_count`` (remembered per client)."""
        import httpx

        if self._can_tokenize is not False:
            url = self.root_url + "/extras/tokenize/count"
            try:
                response = self._sync().post(url, json={"input": text, "model": self.model})
            except httpx.HTTPError as exc:
                raise self._translate(exc, url) from exc
            if response.status_code in (404, 405):
                self._can_tokenize = False
            else:
                check_status(response.status_code, response.content, url)
                self._can_tokenize = True
                return int(response.json()["count"])
        return approximate_token_count(text)

    def count_chat_tokens(self, messages: Messages) -> int:
        """An approximation: the remote chat template is unknown, so it counts the roles and
        contents with the server's tokenizer plus a ChatML-like overhead per message."""
        messages = validate_request(messages, 1, 0.0)
        text = "".join(f"{m['role']}\n{m['content']}\n" for m in messages)
        return self.count_tokens(text) + _TOKENS_PER_MESSAGE * len(messages) + _TOKENS_FOR_REPLY

    # -- generation ------------------------------------------------------------------

    async def astream_chat(
        self, messages: Messages, *, max_tokens=256, temperature=0.0, seed=None, stop=None, grammar=None
    ) -> AsyncIterator[TokenDelta]:
        import httpx

        body = chat_request_body(self.model, messages, max_tokens, temperature, seed, stop, grammar)
        url = self.base_url + "/chat/completions"
        parser = SSEParser(url)
        try:
            async with self._async() as client, client.stream("POST", url, json=body) as response:
                if response.status_code >= 400:
                    check_status(response.status_code, await response.aread(), url)
                async for line in response.aiter_lines():
                    delta = parser.feed(line)
                    if delta is not None:
                        yield delta
        except httpx.HTTPError as exc:
            raise self._translate(exc, url) from exc
        # the usage fallback may ask the server to tokenize: keep that off the event loop
        yield await asyncio.to_thread(parser.final, self, body["messages"])


class SSEParser:
    """Turns ``data:`` lines into TokenDeltas and remembers finish_reason and usage."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.n_deltas = 0

    def feed(self, line: str) -> TokenDelta | None:
        if not line.startswith("data:"):
            return None  # comments (": ping"), event names, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            return None
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError as exc:
            raise InferenceError(f"{self.url} sent a malformed stream line {data[:200]!r}: {exc}") from exc
        if "error" in chunk:
            raise InferenceError(f"{self.url} reported an error mid-stream: {chunk['error']}")
        if chunk.get("usage"):
            u = chunk["usage"]
            self.usage = Usage(int(u.get("prompt_tokens", 0)), int(u.get("completion_tokens", 0)))
        for choice in chunk.get("choices") or []:
            self.finish_reason = choice.get("finish_reason") or self.finish_reason
            text = (choice.get("delta") or {}).get("content") or ""
            if text:
                self.n_deltas += 1
                return TokenDelta(text)
        return None

    def final(self, client: OpenAICompatibleClient, messages: Messages) -> TokenDelta:
        """The closing delta. Without a server usage chunk, usage is approximated: the
        prompt by ``count_chat_tokens``, the completion as one token per streamed delta
        (what llama.cpp and vLLM send)."""
        usage = self.usage or Usage(client.count_chat_tokens(messages), self.n_deltas)
        return TokenDelta("", finish_reason=self.finish_reason or "stop", usage=usage)


def _request_user() -> str | None:
    """A stable pseudonym of the user of the pipeline request this call serves (None
    outside one): a server needs to tell users apart, not to know their names."""
    import hashlib

    from studio_nb.kernel.context import current_request

    ctx = current_request()
    if ctx is None or not isinstance(ctx.user, str) or not ctx.user:
        return None
    return "u-" + hashlib.sha256(ctx.user.encode()).hexdigest()[:16]
