"""A minimal asyncio HTTP/1.1 connection to the model process, for its streamed answers.

Why not httpx on this path: an answer arrives one token per chunk, and httpx's async stream
spends about 0.5 ms of CPU per chunk (h11, anyio and several generator layers) in the front
end; on a machine whose cores all run llama.cpp's threads that time is taken from the model.
This reads exactly what ``model_server.py`` writes (a status line, headers, then a
``Content-Length`` body or chunked SSE events) with asyncio's ``StreamReader``, at about a
third of the cost (measured: 0.51 vs 0.18 ms per token). Token counts still go through
httpx, where this cost does not repeat per token.

A connection whose response was read to the end is kept for the event loop's next request
(a new one costs a connect and a server thread: about a millisecond of time to first token).
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator


class ModelUnreachable(ConnectionError):
    """Nobody accepted the connection: the request was never sent."""


class Connection:
    """One keep-alive connection; ``post`` then ``read_body`` or ``lines``, one request at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.headers: dict[str, str] = {}
        self.complete = True  # the last response was read to its end: the connection can be reused

    @classmethod
    async def open(cls, socket_path: str) -> "Connection":
        try:
            reader, writer = await asyncio.open_unix_connection(socket_path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ModelUnreachable(f"{socket_path}: {exc}") from exc
        return cls(reader, writer)

    @property
    def reusable(self) -> bool:
        return (self.complete and not self.reader.at_eof() and not self.writer.is_closing()
                and self.headers.get("connection", "").lower() != "close")  # fmt: skip

    def close(self) -> None:
        self.writer.close()

    async def post(self, target: str, headers: dict[str, str], body: bytes) -> int:
        """Send a POST and read the status line and headers; returns the status."""
        self.complete = False
        head = [f"POST {target} HTTP/1.1", "Host: model.local", "Content-Type: application/json",
                f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]  # fmt: skip
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        status = await self._line()
        self.headers = {}
        while (line := await self._line()) not in (b"\r\n", b"\n"):
            name, _, value = line.decode("latin-1").partition(":")
            self.headers[name.strip().lower()] = value.strip()
        return int(status.split(b" ", 2)[1])

    async def _line(self) -> bytes:
        line = await self.reader.readline()
        if not line.endswith(b"\n"):
            raise ConnectionResetError("the model process closed the connection mid-response")
        return line

    async def read_body(self) -> bytes:
        """The whole body of a ``Content-Length`` or chunked response."""
        if "chunked" in self.headers.get("transfer-encoding", ""):
            return b"".join([chunk async for chunk in self._chunks()])
        body = await self.reader.readexactly(int(self.headers.get("content-length") or 0))
        self.complete = True
        return body

    async def lines(self) -> AsyncIterator[str]:
        """The lines of a chunked body (``data: ...`` and the blank lines between events)."""
        async for chunk in self._chunks():
            for line in chunk.decode("utf-8").split("\n"):
                yield line

    async def _chunks(self) -> AsyncIterator[bytes]:
        while True:
            size = int((await self._line()).split(b";", 1)[0], 16)
            if size == 0:
                await self._line()  # the blank line after the last chunk
                self.complete = True
                return
            data = await self.reader.readexactly(size + 2)
            yield data[:-2]
