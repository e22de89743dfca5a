"""The model process: one GGUF loaded once and served to its owner over a private Unix socket.

    python -m studio_nb.services.inference.model_server --spec '{"model_path": ..., "n_ctx": 2048}' \\
        --socket DIR/model-KEY.sock --token-file DIR/model-KEY.token --users-file DIR/model-KEY.users \\
        --info-file DIR/model-KEY.json [--ready-fd N] [--idle-timeout 600]

``ManagedModelClient`` starts it (``model_process.py`` decides where its files live and when
it runs); it can be started by hand to debug. Why a process at all: a native crash in
llama.cpp (SIGILL from a build for another CPU, SIGSEGV, the OOM killer) ends this process,
not the Jupyter server or a notebook kernel; the client turns the broken stream into a
``model_crashed`` error and the next request starts a fresh process.

Why this small handler and not ``llama_cpp.server``: the model runs inside the very same
``LlamaCppClient`` as in-process (the GGUF's own chat template, the last-prompt-token split
that keeps greedy answers independent of the KV cache, exact token counts, the stop check
between tokens), so both isolation modes give the same answer token for token, while the
stock server builds prompts and decodes cached prompts differently (see
tests/inference/test_openai_compat.py). It also needs only the standard library, so the
``ai`` install works without FastAPI/uvicorn. What the process costs against in-process:
about 1-2.5 ms of time to first token, no measurable decode rate (bench/isolation.py).

The protocol is an OpenAI-compatible subset, HTTP/1.1 over the Unix socket:

- ``POST /v1/chat/completions`` (``stream: true``): Server-Sent Events of
  ``chat.completion.chunk``; the last chunk carries ``usage`` and ``studio`` (the
  ``GenerationStats`` of the request). An error found before the first token (bad request,
  prompt too long) is an HTTP error with ``{"error": {"code", "message"}}``, the code being
  the ``StudioError`` code the in-process client would have raised.
- ``POST /extras/tokenize/count`` ``{"input"}`` -> ``{"count"}`` (as llama_cpp.server) and
  ``POST /extras/chat/count`` ``{"messages"}`` -> ``{"count"}`` (exact, after the template).
- ``GET /v1/models`` and ``GET /health`` (pid, model, requests served, the last generation).

Only the owner gets in: the socket is created 0600 in a 0700 folder, a peer with another
uid is refused (``SO_PEERCRED``), and every request must carry ``Authorization: Bearer
<token>`` from the 0600 token file (a second lock, for the day the folder is shared).

A client that goes away mid-answer is noticed at the next token written (EPIPE): the
stream is closed and llama.cpp stops between two tokens, as in-process. The process exits
on SIGTERM (``close()`` of the last client) or after ``--idle-timeout`` seconds without a
request once no client holds the users file (a shared ``flock``; see model_process.py).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hmac
import json
import os
import secrets
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable

from studio_nb.errors import StudioError

MAX_BODY = 16 * 1024 * 1024
SLOTS_ENV = "STUDIO_NB_MODEL_SLOTS"


def default_slots() -> int:
    """Two copies (one user's long answer never blocks another's first token), one on a
    single-CPU machine (two copies there would only share one core); ``$STUDIO_NB_MODEL_SLOTS``."""
    raw = os.environ.get(SLOTS_ENV)
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            raise SystemExit(f"${SLOTS_ENV}={raw!r} is not a whole number") from None
    return 2 if (os.cpu_count() or 1) > 1 else 1
#: HTTP status for the StudioError codes a request can cause (anything else: 500)
STATUS = {"bad_request": 400, "too_long": 413, "bad_config": 400, "model_not_found": 404, "unauthorized": 401}


class _Activity:
    """Requests in flight and the time the last one ended, with a condition to wait on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.active = 0
        self.served = 0
        self.last = time.monotonic()

    @contextlib.contextmanager
    def request(self):
        with self.cond:
            self.active += 1
        try:
            yield
        finally:
            with self.cond:
                self.active -= 1
                self.served += 1
                self.last = time.monotonic()
                self.cond.notify_all()

    def wait_idle(self, seconds: float) -> None:
        """Block until no request has run for ``seconds``."""
        with self.cond:
            while True:
                if self.active:
                    self.cond.wait()
                    continue
                remaining = self.last + seconds - time.monotonic()
                if remaining <= 0:
                    return
                self.cond.wait(remaining)

    def touch(self) -> None:
        with self.cond:
            self.last = time.monotonic()

    def wait_quiet(self, timeout: float) -> None:
        """Wait (bounded) for the requests in flight to end."""
        with self.cond:
            self.cond.wait_for(lambda: self.active == 0, timeout)


class ModelServer(socketserver.ThreadingUnixStreamServer):
    """One thread per connection; each copy of the model runs one generation at a time on
    its ``LlamaCppClient``'s worker thread, and ``slots`` (fair_slots.py) decides which
    request gets a copy next, so one user cannot hold them all."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, path: str, llm: Any, token: str, slots: Any = None) -> None:
        from studio_nb.services.inference.fair_slots import FairSlots

        super().__init__(path, _Handler, bind_and_activate=False)
        self.llm = llm  # the first copy: tokenizer counts, health
        self.slots = slots or FairSlots(llm)  # the copies generations run on, handed out fairly
        self.token = token
        self.owner_uid = os.getuid()
        self.activity = _Activity()
        self.started = time.time()
        self.last_stopped = None  # GenerationStats of the last answer whose client went away
        old = os.umask(0o177)  # the socket file is created 0600: no moment where others could connect
        try:
            self.server_bind()
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self.server_activate()

    def peer_allowed(self, conn: socket.socket) -> bool:
        """Only processes of this process's user (``SO_PEERCRED``, Linux). Where the kernel cannot
        say, the 0600 socket in its 0700 folder and the token still keep others out."""
        opt = getattr(socket, "SO_PEERCRED", None)
        if opt is None:
            return True
        _pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, opt, struct.calcsize("3i")))
        return uid == self.owner_uid

    def token_ok(self, header: str) -> bool:
        return hmac.compare_digest(header.encode(), f"Bearer {self.token}".encode())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client's connection pool reuses one socket
    server: ModelServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the log is for failures
        pass

    def setup(self) -> None:
        super().setup()
        self.peer_ok = self.server.peer_allowed(self.request)  # once per connection

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch({"/health": self._health, "/v1/models": self._models})

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch({
            "/v1/chat/completions": self._chat,
            "/extras/tokenize/count": self._count_text,
            "/extras/chat/count": self._count_chat,
        })

    # ---------------------------------------------------------------- plumbing
    def _dispatch(self, routes: dict[str, Callable[[], None]]) -> None:
        if not self.peer_ok:  # answered after the request is read, so the client sees the answer
            self.close_connection = True
            self._json(403, _error("forbidden", "this model process serves only the user who owns it"))
            return
        if not self.server.token_ok(self.headers.get("Authorization", "")):
            self._read_body()  # keep the connection usable
            self._json(401, _error("unauthorized", "a wrong or missing token; fix: send the token file's"))
            return
        route = routes.get(self.path.split("?", 1)[0])
        if route is None:
            self._read_body()
            self._json(404, _error("not_found", f"no route {self.command} {self.path}"))
            return
        with self.server.activity.request():
            try:
                route()
            except StudioError as exc:
                self._json(STATUS.get(exc.code, 500), _error(exc.code, str(exc)))
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            except Exception as exc:  # a bug must cost one request, not the process
                import traceback

                traceback.print_exc()
                self._json(500, _error("inference_error", f"{type(exc).__name__}: {exc}"))

    def _read_body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            from studio_nb.services.inference.base import InvalidRequestError

            self.close_connection = True
            raise InvalidRequestError(f"request body of {length} bytes is over {MAX_BODY}")
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError as exc:
            from studio_nb.services.inference.base import InvalidRequestError

            raise InvalidRequestError(f"the request body is not JSON: {exc}") from exc
        return body if isinstance(body, dict) else {}

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _event(self, obj: Any) -> None:
        """One SSE event as one HTTP chunk (one write: the client sees each token at once)."""
        payload = obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False).encode()
        data = b"data: " + payload + b"\n\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    # ---------------------------------------------------------------- routes
    def _health(self) -> None:
        llm, act = self.server.llm, self.server.activity
        last = llm.last_generation
        self._json(200, {
            "pid": os.getpid(), "model": llm.model_name, "model_path": llm.model_path, "n_ctx": llm.n_ctx,
            "n_threads": llm.n_threads, "load_s": llm.load_time_s, "started": self.server.started,
            "requests_served": act.served, "requests_active": act.active - 1,  # not counting this one
            "last_generation": asdict(last) if last else None,
            "last_stopped": asdict(self.server.last_stopped) if self.server.last_stopped else None,
            **self.server.slots.state(),
        })

    def _models(self) -> None:
        llm = self.server.llm
        model = {"id": llm.model_name, "object": "model", "owned_by": "studio-nb"}
        self._json(200, {"object": "list", "data": [model]})

    def _count_text(self) -> None:
        text = self._read_body().get("input")
        if not isinstance(text, str):
            from studio_nb.services.inference.base import InvalidRequestError

            raise InvalidRequestError("'input' must be a string")
        self._json(200, {"count": self.server.llm.count_tokens(text)})

    def _count_chat(self) -> None:
        self._json(200, {"count": self.server.llm.count_chat_tokens(self._read_body().get("messages"))})

    def _chat(self) -> None:
        body = self._read_body()
        user = body.get("user") if isinstance(body.get("user"), str) else None
        with self.server.slots.slot(user) as llm:
            self._generate(body, llm)

    def _generate(self, body: dict, llm: Any) -> None:
        names = ("max_tokens", "temperature", "seed", "stop", "grammar")
        options = {k: body[k] for k in names if body.get(k) is not None}
        if not body.get("stream"):
            self._whole_answer(llm.chat(body.get("messages"), **options), llm)
            return
        writer = _StreamWriter(self, llm)
        writer.stop = llm.submit(body.get("messages"), writer.hand_over, **options)
        if writer.broken:
            writer.stop()
        writer.done.wait()  # the worker thread writes the answer; this thread only waits for the end
        if writer.error is not None:  # before the first token: an HTTP error status with the code
            raise writer.error
        if writer.broken:
            self.server.last_stopped = llm.last_generation
            self.close_connection = True

    def _whole_answer(self, completion: Any, llm: Any) -> None:
        """``llm.chat``'s Completion as an OpenAI ``chat.completion`` body."""
        self._json(200, {
            "object": "chat.completion", "model": llm.model_name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text},
                         "finish_reason": completion.finish_reason}],
            "usage": _usage(completion.usage),
        })


class _StreamWriter:
    """Writes one streamed answer to the socket from the model's worker thread.

    Each delta goes straight from the thread that generated it to the socket, with no hop to
    the handler thread: a hop is a thread wake-up per token and two on the way to the first
    one (bench/isolation.py). A client that goes away makes the write fail (EPIPE): the
    request is stopped and llama.cpp stops between two tokens. A client that stops reading
    without closing holds the model once its socket buffer (thousands of tokens) is full.
    """

    def __init__(self, handler: _Handler, llm: Any) -> None:
        self.handler = handler
        self.llm = llm
        self.done = threading.Event()
        self.stop: Callable[[], None] | None = None
        self.error: BaseException | None = None  # failed before the first token
        self.broken = False  # the client went away
        self.started = False  # the response headers are out
        self.cid, self.created = f"chatcmpl-{secrets.token_hex(6)}", int(time.time())
        self.head = (f'{{"id": "{self.cid}", "object": "chat.completion.chunk", "created": {self.created}, '
                     f'"model": {json.dumps(self.llm.model_name)}, "choices": [{{"index": 0, "delta": {{"content": ')

    def hand_over(self, item: Any) -> None:
        """Called on the worker thread: a TokenDelta, an exception, then None at the end."""
        try:
            if not self.broken:
                self._write(item)
        except OSError:  # EPIPE / ECONNRESET: nobody is reading any more
            self.broken = True
            stop = self.stop
            if stop is not None:
                stop()
        finally:
            if item is None:
                self.done.set()

    def _write(self, item: Any) -> None:
        h = self.handler
        if isinstance(item, BaseException):
            if not self.started:
                self.error = item
            else:  # after the headers the error travels in the stream
                code = item.code if isinstance(item, StudioError) else "inference_error"
                h._event({"error": {"code": code, "message": str(item)}})
            return
        if self.error is not None:
            return
        if not self.started:
            self.started = True
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Cache-Control", "no-cache")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
        if item is None:
            h._event(b"[DONE]")
            h.wfile.write(b"0\r\n\r\n")
            return
        if item.text:  # the hot path: one token, formatted without building a dict
            h._event((self.head + json.dumps(item.text, ensure_ascii=False) + '}, "finish_reason": null}]}').encode())
        if item.finish_reason is not None:
            last = self.llm.last_generation  # this request's: recorded just before its last delta
            h._event({
                "id": self.cid, "object": "chat.completion.chunk", "created": self.created,
                "model": self.llm.model_name,
                "choices": [{"index": 0, "delta": {}, "finish_reason": item.finish_reason}],
                "usage": _usage(item.usage), "studio": {"generation": asdict(last) if last else None},
            })


def _usage(usage: Any) -> dict | None:
    if usage is None:
        return None
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens}


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def _write_private(path: str, text: str) -> None:
    """Write ``path`` atomically with mode 0600 (a reader never sees a half-written file)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _unlink(*paths: str) -> None:
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(p)


class _Lifecycle:
    """Stops the server once: on SIGTERM, or when idle with no client attached."""

    def __init__(self, server: ModelServer, args: argparse.Namespace) -> None:
        self.server, self.args = server, args
        self.reason: str | None = None
        self._lock = threading.Lock()

    def stop(self, reason: str) -> None:
        with self._lock:
            if self.reason is not None:
                return
            self.reason = reason
        # New clients find no socket from now on (and start a fresh process); requests
        # already accepted are still answered before the process exits.
        _unlink(self.args.socket, self.args.info_file, self.args.token_file)
        threading.Thread(target=self.server.shutdown, daemon=True).start()

    def watch_idle(self) -> None:
        """Exit after ``idle_timeout`` without a request once nobody holds the users file."""
        with os.fdopen(os.open(self.args.users_file, os.O_RDWR | os.O_CREAT, 0o600), "r+b") as users:
            while True:
                self.server.activity.wait_idle(self.args.idle_timeout)
                try:
                    # exclusive: no client is attached, and none can attach until this process
                    # is gone (the lock is released when it exits)
                    fcntl.flock(users.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    # clients attached: look again after another idle period (at least a second)
                    self.server.activity.touch()
                    self.server.activity.wait_idle(max(self.args.idle_timeout, 1.0))
                    continue
                self.stop(f"idle for {self.args.idle_timeout:g} s with no client attached")
                threading.Event().wait()  # keep the file (and its lock) open until the process exits


def serve(args: argparse.Namespace) -> int:
    from studio_nb.services.inference.llama_local import LlamaCppClient

    ready = os.fdopen(args.ready_fd, "w") if args.ready_fd is not None else None

    def report(obj: dict) -> None:
        if ready is not None:
            ready.write(json.dumps(obj) + "\n")
            ready.close()

    try:
        llm = LlamaCppClient(**json.loads(args.spec))
        llm.warm_up()
        llm.count_tokens("warm")  # the tokenizer's first call allocates; pay it before the first request
        token = secrets.token_urlsafe(32)
        _write_private(args.token_file, token)  # before the socket exists: a client that connects can read it
        from studio_nb.services.inference.fair_slots import FairSlots

        def another_copy() -> Any:
            copy = LlamaCppClient(**json.loads(args.spec))
            copy.warm_up()
            return copy

        server = ModelServer(args.socket, llm, token, FairSlots(llm, another_copy, args.slots))
        _write_private(args.info_file, json.dumps({
            "pid": os.getpid(), "socket": args.socket, "spec": json.loads(args.spec), "data_dir": args.data_dir,
            "started": server.started, "load_s": llm.load_time_s, "python": sys.executable,
        }))
    except StudioError as exc:
        report({"ok": False, "code": exc.code, "message": str(exc)})
        return 2
    except Exception as exc:
        report({"ok": False, "code": "model_process_failed", "message": f"{type(exc).__name__}: {exc}"})
        return 2
    life = _Lifecycle(server, args)
    signal.signal(signal.SIGTERM, lambda *_: life.stop("SIGTERM"))
    threading.Thread(target=life.watch_idle, name="idle-watch", daemon=True).start()
    print(f"model process {os.getpid()} serving {llm.model_name} on {args.socket} "
          f"(loaded in {llm.load_time_s:.2f} s)", file=sys.stderr, flush=True)
    report({"ok": True, "pid": os.getpid(), "load_s": llm.load_time_s})
    try:
        server.serve_forever()
    finally:
        server.activity.wait_quiet(30)  # answers in flight end first (none when stopped as unused)
        server.server_close()
        server.slots.close()
    print(f"model process {os.getpid()} exits: {life.reason}", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m studio_nb.services.inference.model_server",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--spec", required=True, help="LlamaCppClient keyword arguments as JSON")
    ap.add_argument("--socket", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--users-file", required=True)
    ap.add_argument("--info-file", required=True)
    ap.add_argument("--data-dir", default=None, help="the data dir it serves (recorded in the info file)")
    ap.add_argument("--ready-fd", type=int, default=None, help="a pipe to write one JSON line to once serving")
    ap.add_argument("--idle-timeout", type=float, default=600.0)
    ap.add_argument("--slots", type=int, default=default_slots(),
                    help="copies of the model, so users do not wait for each other (fair_slots.py; "
                    f"${SLOTS_ENV} sets the default)")
    return serve(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
