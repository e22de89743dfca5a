"""``ManagedModelClient``: the local GGUF in a model process of its own (the default).

It takes the settings of ``LlamaCppClient`` and gives the same answers, token for token:
the model process (``model_server.py``) runs a ``LlamaCppClient`` with those settings. This
client finds or starts the user's process for the data dir (``model_process.py``) and
talks to it over the process's private Unix socket: with httpx for token counts, and
through ``uds_http.Connection`` for its one streaming loop (``astream_chat``; the blocking
forms are the base class's), where httpx's cost per token would be taken from the model
(``uds_http.py`` says how much). The process speaks the OpenAI protocol, so this client
uses the OpenAI-compatible client's pieces — ``chat_request_body``, ``check_status`` and
``SSEParser`` — rather than inheriting its class.

What a native crash costs: the stream that was running breaks, and the client raises
``ModelCrashedError`` (code ``model_crashed``) naming the pid and how it ended (the signal,
when this front end started it); that turn ends with an ``error`` frame. It is not sent
again, since the question may be what crashed the model. The next request finds nobody
listening, starts a fresh process and is sent then: a request is sent again only when it
never reached a process (a refused connection, or a token from a process that is gone),
so nothing runs twice.

Closing a stream closes its connection; the process notices at the next token and stops
generating, as the in-process client does. ``close()`` stops the process when no other
front end uses it (see ``ModelProcess.detach``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import weakref
from typing import AsyncIterator

from studio_nb.errors import ConfigError
from studio_nb.services.inference.base import (
    BackendTimeoutError,
    BackendUnavailableError,
    InferenceClient,
    Messages,
    TokenDelta,
    validate_request,
)
from studio_nb.services.inference.llama_local import GenerationStats, LlamaSettings
from studio_nb.services.inference.model_process import (
    ModelCrashedError,
    ModelProcess,
    default_idle_timeout,
    describe_exit,
    studio_error,
    wait_exit,
)
from studio_nb.services.inference.openai_compat import SSEParser, chat_request_body, check_status
from studio_nb.services.inference.uds_http import Connection, ModelUnreachable

_HOST = "http://model.local"  # ignored on a Unix socket; httpx wants a URL


class _Stale(Exception):
    """The request never reached a live process (refused, or answered 401 by a newer one)."""


class _Parser(SSEParser):
    """Also reads what the model process adds: its error codes and the generation's stats."""

    stats: dict | None = None

    def feed(self, line: str) -> TokenDelta | None:
        if line.startswith('data: {"error"'):
            err = json.loads(line[5:])["error"]
            raise studio_error(err.get("code", "inference_error"), err.get("message", line))
        if '"studio": ' in line:  # the last chunk (a token's text would have its quotes escaped)
            self.stats = (json.loads(line[5:]).get("studio") or {}).get("generation")
        return super().feed(line)


class ManagedModelClient(InferenceClient):
    """A local GGUF served by the user's model process; see the module docstring.

    ``model_path`` ... ``chat_format``: as ``LlamaCppClient``. ``data_dir``: whose process
    (one per user and data dir; the Studio pipeline passes its own). ``idle_timeout_s``:
    how long an unused process stays loaded (default ``$STUDIO_NB_MODEL_IDLE_S`` or 600).
    ``start_timeout_s``: the longest wait for a model to load. ``timeout_s``: the longest
    wait for an answer to start (and, in blocking calls, for each next piece); None: no
    limit, as in-process (a crash is seen at once anyway, as a broken connection).
    """

    def __init__(
        self,
        model_path: str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        seed: int = 0,
        n_batch: int = 256,
        chat_format: str | None = None,
        data_dir: str | None = None,
        idle_timeout_s: float | None = None,
        start_timeout_s: float = 300.0,
        timeout_s: float | None = None,
    ) -> None:
        # the same settings, checked the same way, as the in-process client the model process runs
        self.settings = settings = LlamaSettings.checked(model_path, n_ctx, n_threads, seed, n_batch, chat_format)
        if timeout_s is not None and (not isinstance(timeout_s, (int, float)) or timeout_s <= 0):
            raise ConfigError(f"timeout_s must be a positive number or None, got {timeout_s!r}")
        self.model = self.model_name = settings.model_name
        self.n_ctx = settings.n_ctx
        self.timeout_s = timeout_s
        self.model_path, self.n_threads, self.seed = settings.model_path, settings.n_threads, settings.seed
        self.n_batch, self.chat_format = settings.n_batch, settings.chat_format
        self.data_dir = data_dir
        self.idle_timeout_s = idle_timeout_s
        self.start_timeout_s = start_timeout_s
        self.pid: int | None = None
        self.load_time_s: float | None = None
        self.last_generation: GenerationStats | None = None
        self.process: ModelProcess | None = None
        self._token: str | None = None  # the process's token, read at each (re)connection
        self._client = None  # httpx.Client over the Unix socket, for token counts
        self._ssl = None  # never used on a Unix socket, but httpx wants one: made once
        self._lock = threading.RLock()
        self._connected = 0  # bumped at each (re)connection: two failing requests reconnect once
        self._up = False
        self._generating = 0
        self._idle: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> kept Connections

    def __repr__(self) -> str:
        state = f"model process {self.pid}" if self._up else "not started"
        return (f"ManagedModelClient({self.model_name!r}, n_ctx={self.n_ctx}, n_threads={self.n_threads}, "
                f"{state})")

    @property
    def busy(self) -> bool:
        """True while a generation of this client streams."""
        return self._generating > 0

    # -- lifecycle -------------------------------------------------------------------

    def _spec(self) -> dict:
        path = self.settings.model_file()
        return {"model_path": str(path.resolve()), "n_ctx": self.n_ctx, "n_threads": self.n_threads,
                "seed": self.seed, "n_batch": self.n_batch, "chat_format": self.chat_format}  # fmt: skip

    def warm_up(self) -> None:
        """Find or start the model process and connect (idempotent); a model that cannot load
        raises the in-process error (``ModelNotFoundError`` naming the path and the fix)."""
        if self._up:
            return
        with self._lock:
            if self._up:
                return
            if self.process is None:
                from studio_nb.config import default_data_dir

                idle = default_idle_timeout() if self.idle_timeout_s is None else self.idle_timeout_s
                self.process = ModelProcess(self._spec(), self.data_dir or default_data_dir(),
                                            idle_timeout_s=idle, start_timeout_s=self.start_timeout_s)
            self.process.attach()
            self._connect()

    def _connect(self) -> None:
        """(Under the lock.) Make sure a process serves, read its token, drop old connections."""
        self.pid = self.process.ensure_running()
        self._token = self.process.token()
        self.load_time_s = (self.process.info() or {}).get("load_s")
        self._close_http()
        self._drop_connections()
        self._connected += 1
        self._up = True

    def _reconnect(self, seen: int) -> None:
        with self._lock:
            if self._connected == seen and self.process is not None:
                self._up = False
                self.process.attach()
                self._connect()

    def close(self) -> None:
        """Close the connections; stop the process if no other front end uses it."""
        with self._lock:
            self._close_http()
            self._drop_connections()
            self._up = False
            process = self.process
        if process is not None:
            process.detach(stop_if_unused=True)

    # -- plumbing --------------------------------------------------------------------

    def _headers(self) -> dict:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def _sync(self):
        """The httpx client of the blocking calls (token counts), over the process's socket."""
        if self._client is None:
            import httpx

            if self._ssl is None:
                self._ssl = httpx.create_ssl_context(verify=False)
            transport = httpx.HTTPTransport(uds=self.process.socket_path, verify=self._ssl)
            self._client = httpx.Client(transport=transport, headers=self._headers(),
                                        timeout=httpx.Timeout(self.timeout_s, connect=10.0))
        return self._client

    def _close_http(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def _connection(self) -> Connection:
        """A kept connection of this event loop to the current process, or a new one."""
        idle = self._idle.get(asyncio.get_running_loop())
        while idle:
            conn = idle.pop()
            if conn.reusable:
                return conn
            conn.close()
        return await Connection.open(self.process.socket_path)

    def _release(self, conn: Connection | None, connected: int) -> None:
        """Keep a connection whose answer was read to the end (of the current process); close others."""
        if conn is None:
            return
        if conn.reusable and connected == self._connected:
            idle = self._idle.setdefault(asyncio.get_running_loop(), [])
            if len(idle) < 4:
                idle.append(conn)
                return
        conn.close()

    def _drop_connections(self) -> None:
        """Close each loop's kept connections on their loop (a loop that is gone took them along)."""
        kept, self._idle = self._idle, weakref.WeakKeyDictionary()
        for loop, conns in list(kept.items()):
            for conn in conns:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(conn.close)

    def _check(self, status: int, body: bytes, url: str) -> None:
        """Raise the error the process reported, as the in-process client would have."""
        if status == 401:
            raise _Stale()
        if status >= 400:
            try:
                err = json.loads(body)["error"]
                code, message = str(err["code"]), str(err["message"])
            except (ValueError, KeyError, TypeError):
                check_status(status, body, url)  # not the process's own error body
                raise
            raise studio_error(code, message)

    def _crashed(self, exc: Exception) -> ModelCrashedError:
        """What a broken stream means, once the process's fate is known (waits up to 5 s)."""
        pid, process = self.pid, self.process
        self._up = False  # the next request reconnects, starting a process if none serves
        ended, code = wait_exit(pid, 5) if pid else (False, None)
        log = f" Its log: {process.log_file}" if process is not None else ""
        if ended:
            return ModelCrashedError(
                f"the model process (pid {pid}) died while answering ({describe_exit(code)}); "
                f"the next question restarts it.{log}"
            )
        return ModelCrashedError(
            f"the connection to the model process (pid {pid}) broke mid-answer ({type(exc).__name__}: {exc}); "
            f"the next question reconnects.{log}"
        )

    def _failure(self, exc: Exception, attempt: int, url: str) -> Exception | None:
        """The error a failed request raises, or None: reconnect (starting a process if none
        serves) and send it again, which is safe only when it never reached a process."""
        import httpx

        if isinstance(exc, (httpx.ConnectError, ModelUnreachable, _Stale)):
            if not attempt:
                return None
            connect = not isinstance(exc, _Stale)
            why = f"{type(exc).__name__}: {exc}" if connect else "it refused the token"
            return BackendUnavailableError(
                f"the model process on {self.process.socket_path} refused the request right after starting "
                f"({why}); fix: see its log {self.process.log_file}"
            )
        if isinstance(exc, (httpx.TimeoutException, TimeoutError)):
            return BackendTimeoutError(
                f"the model process (pid {self.pid}) did not answer within {self.timeout_s:g} s; "
                f"fix: raise timeout_s, or see its log {self.process.log_file}"
            )
        return self._crashed(exc)  # the connection broke after the request reached the process

    def _post_json(self, path: str, payload: dict) -> dict:
        import httpx

        self.warm_up()
        url = _HOST + path
        for attempt in (0, 1):
            seen = self._connected
            try:
                response = self._sync().post(url, json=payload)
                self._check(response.status_code, response.content, url)
                return response.json()
            except (httpx.TransportError, _Stale) as exc:
                error = self._failure(exc, attempt, url)
                if error is not None:
                    raise error from exc
                self._reconnect(seen)
        raise AssertionError("unreachable")

    def _final(self, parser: _Parser, messages: list[dict]) -> TokenDelta:
        if parser.stats:
            self.last_generation = GenerationStats(**parser.stats)
        return parser.final(self, messages)

    # -- tokens ----------------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Exact: the process's tokenizer."""
        return int(self._post_json("/extras/tokenize/count", {"input": text})["count"])

    def count_chat_tokens(self, messages: Messages) -> int:
        """Exact: the process applies the GGUF's chat template, as in-process."""
        messages = validate_request(messages, 1, 0.0)
        return int(self._post_json("/extras/chat/count", {"messages": messages})["count"])

    # -- generation ------------------------------------------------------------------

    async def astream_chat(
        self, messages: Messages, *, max_tokens=256, temperature=0.0, seed=None, stop=None, grammar=None
    ) -> AsyncIterator[TokenDelta]:
        """The client's one streaming loop, over ``uds_http.Connection`` (httpx's cost per
        token would be taken from the model); a request that never reached a live process is
        sent once more after reconnecting (``_failure``)."""
        body = chat_request_body(self.model, messages, max_tokens, temperature, seed, stop, grammar)
        payload = json.dumps(body, ensure_ascii=False).encode()
        if not self._up:
            await asyncio.to_thread(self.warm_up)
        url = _HOST + "/v1/chat/completions"
        for attempt in (0, 1):
            seen, parser, conn = self._connected, _Parser(url), None
            try:
                conn = await self._connection()
                async with asyncio.timeout(self.timeout_s):  # None: no limit; else up to the first token
                    status = await conn.post("/v1/chat/completions", self._headers(), payload)
                if status >= 400:
                    self._check(status, await conn.read_body(), url)
                self._generating += 1
                try:
                    async for line in conn.lines():
                        delta = parser.feed(line)
                        if delta is not None:
                            yield delta
                finally:
                    self._generating -= 1
                break
            except (OSError, EOFError, _Stale) as exc:  # EOFError: asyncio's IncompleteReadError
                error = await asyncio.to_thread(self._failure, exc, attempt, url)  # may wait for the exit
                if error is not None:
                    raise error from exc
                await asyncio.to_thread(self._reconnect, seen)
            finally:
                self._release(conn, seen)  # closing one mid-answer is how the process learns to stop
        yield self._final(parser, body["messages"])
