"""An event bus on Redis Streams: every step of every turn, readable by other clients.

    sink = EventBusSink("redis://127.0.0.1:6379/0")
    pipeline.subscribe(sink)               # or: telemetry: {event_bus: redis://...} in the config
    for ev in follow("redis://127.0.0.1:6379/0"): print(ev)   # another process (studio-nb events -f)

Kernel subscribers run inline on the event loop, so the sink never touches the network
there: ``sink(event)`` only puts a dict on a bounded queue (drop-and-count when it is
full: a slow or absent Redis costs lost telemetry, never memory or latency). A daemon
thread drains the queue into ``XADD ... MAXLEN ~ maxlen`` pipelines, so the stream is
trimmed approximately (cheap) and never grows without bound either.

Each stream entry has one field, ``event``: the JSON of ``{"kind": "step", **StepEvent.to_dict()}``
(or ``kind`` ``"text"`` for answer deltas, ``"response"`` for a final answer).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from typing import Any, Callable, Iterator

from studio_nb.errors import ConfigError, StudioError

log = logging.getLogger(__name__)

DEFAULT_URL = "redis://127.0.0.1:6379/0"
DEFAULT_STREAM = "studio_nb:events"
_STOP = object()


def _redis(url: str) -> Any:
    try:
        import redis
    except ImportError:
        raise ConfigError("the event bus needs the Redis client: pip install 'studio-nb[redis]' (redis)") from None
    return redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)


def event_record(item: Any) -> dict[str, Any] | None:
    """The JSON-able record for a StepEvent, a TextDelta, a Response or a plain dict."""
    from studio_nb.kernel.events import StepEvent

    if isinstance(item, StepEvent):
        return {"kind": "step", **item.to_dict()}
    if isinstance(item, dict):
        return {"kind": item.get("kind", "custom"), **item}
    if hasattr(item, "content") and hasattr(item, "request_id"):  # TextDelta
        return {
            "kind": "text",
            "content": item.content,
            "request_id": item.request_id,
            "session_id": getattr(item, "session_id", None),
            "restart": bool(getattr(item, "restart", False)),
            "ts": time.time(),
        }
    if hasattr(item, "to_dict"):
        return {"kind": type(item).__name__.lower(), **item.to_dict(), "ts": time.time()}
    return None


class EventBusSink:
    """A kernel event subscriber that publishes to a Redis Stream from a background thread.

    ``published``, ``dropped`` (queue full) and ``failed`` (Redis errors) count what
    happened to every event; ``flush()`` waits until the queue is empty, ``close()`` stops
    the thread. The connection is made lazily by the thread, so a missing Redis never
    fails a request.
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        stream: str = DEFAULT_STREAM,
        maxlen: int = 10000,
        queue_size: int = 10000,
        batch_size: int = 200,
    ) -> None:
        if maxlen < 1 or queue_size < 1 or batch_size < 1:
            raise ConfigError("maxlen, queue_size and batch_size must be >= 1")
        self.url, self.stream, self.maxlen, self.batch_size = url, stream, maxlen, batch_size
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self.published = 0
        self.dropped = 0
        self.failed = 0
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"EventBusSink(url={self.url!r}, stream={self.stream!r}, published={self.published}, "
            f"dropped={self.dropped}, failed={self.failed}, pending={self.pending})"
        )

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------------ producer side
    def __call__(self, item: Any) -> None:
        """Queue ``item`` (StepEvent, TextDelta, Response or dict); never blocks."""
        record = event_record(item)
        if record is None or self._closed:
            return
        self._start()
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            with self._lock:
                self.dropped += 1

    publish = __call__

    def publish_text(self, content: str, request_id: str, session_id: str | None = None) -> None:
        """Publish an answer delta that is not a TextDelta object."""
        self({"kind": "text", "content": content, "request_id": request_id, "session_id": session_id, "ts": time.time()})

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._drain, name="studio-nb-eventbus", daemon=True)
                    self._thread.start()

    # ------------------------------------------------------------------ consumer thread
    def _drain(self) -> None:
        client = None
        while True:
            first = self._queue.get()
            batch = [first]
            while len(batch) < self.batch_size:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(r is _STOP for r in batch)
            records = [r for r in batch if r is not _STOP]
            if records:
                client = self._send(client, records)
            for _ in batch:
                self._queue.task_done()
            if stop:
                if client is not None:
                    client.close()
                return

    def _send(self, client: Any, records: list[dict[str, Any]]) -> Any:
        for attempt in range(3):
            try:
                if client is None:
                    client = _redis(self.url)
                pipe = client.pipeline(transaction=False)
                for rec in records:
                    pipe.xadd(
                        self.stream,
                        {"event": json.dumps(rec, ensure_ascii=False, default=str)},
                        maxlen=self.maxlen,
                        approximate=True,
                    )
                pipe.execute()
                with self._lock:
                    self.published += len(records)
                return client
            except Exception as exc:  # Redis down or slow: retry a little, then count the loss
                self.last_error = f"{type(exc).__name__}: {exc}"
                client = None
                if attempt < 2 and not self._closed:
                    time.sleep(0.2 * (attempt + 1))
        with self._lock:
            self.failed += len(records)
        log.warning("event bus: %d events lost (%s)", len(records), self.last_error)
        return None

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued event was sent (or counted as failed); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout``) and stop the thread."""
        if self._closed:
            return
        self.flush(timeout)
        self._closed = True
        if self._thread is not None:
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                pass
            self._thread.join(timeout)


# ---------------------------------------------------------------------- reading
def _decode(entry_id: Any, fields: dict) -> dict[str, Any]:
    raw = fields.get(b"event") or fields.get("event") or b"{}"
    try:
        record = json.loads(raw)
    except ValueError:
        record = {"kind": "invalid", "raw": raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw}
    record["id"] = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return record


def follow(
    url: str = DEFAULT_URL,
    stream: str = DEFAULT_STREAM,
    from_id: str = "$",
    *,
    block_ms: int = 5000,
    count: int = 100,
    stop: Callable[[], bool] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the stream's events as they arrive (XREAD BLOCK), each with its ``id``.

    ``from_id="$"`` starts after the newest entry, ``"0"`` from the oldest kept one, any
    entry id after that entry. ``stop()`` is checked between blocking reads (every
    ``block_ms``); closing the iterator ends it too.
    """
    client = _redis(url)
    try:
        last = from_id
        if last == "$":  # pin "now" to a real id, so nothing is missed between two reads
            newest = client.xrevrange(stream, count=1)
            last = newest[0][0].decode() if newest else "0-0"
        while stop is None or not stop():
            reply = client.xread({stream: last}, count=count, block=block_ms)
            for _name, entries in reply or ():
                for entry_id, fields in entries:
                    record = _decode(entry_id, fields)
                    last = record["id"]
                    yield record
    finally:
        client.close()


def recent(url: str = DEFAULT_URL, stream: str = DEFAULT_STREAM, count: int = 20) -> list[dict[str, Any]]:
    """The last ``count`` events, oldest first."""
    client = _redis(url)
    try:
        return [_decode(i, f) for i, f in reversed(client.xrevrange(stream, count=count))]
    finally:
        client.close()


def format_event(ev: dict[str, Any]) -> str:
    """One line per event for a terminal."""
    ts = time.strftime("%H:%M:%S", time.localtime(ev.get("ts", 0)))
    rid = (ev.get("request_id") or "-")[:8]
    if ev.get("kind") == "step":
        took = f" {ev['duration_ms']:.1f} ms" if ev.get("duration_ms") is not None else ""
        err = f" ({ev['error']})" if ev.get("error") else ""
        return f"{ts} {rid} {ev.get('pipeline', '')}/{ev.get('operator')} {ev.get('status')}{took}{err}"
    if ev.get("kind") == "text":
        return f"{ts} {rid} text {ev.get('content', '')!r}"
    return f"{ts} {rid} {ev.get('kind')} {json.dumps({k: v for k, v in ev.items() if k not in ('ts', 'id')})[:200]}"


__all__ = ["DEFAULT_STREAM", "DEFAULT_URL", "EventBusSink", "event_record", "follow", "format_event", "recent"]
