"""The streaming multipart reader: parts go to files as they arrive, whatever the chunking,
and memory stays at one delimiter plus one part's headers."""

from __future__ import annotations

import io
import random

import pytest

from jupyter_ext.multipart import MAX_HEADER_BYTES, MultipartError, MultipartReader, TooManyParts, boundary_of
from tests.jupyter.conftest import multipart


def _read(body: bytes, boundary: bytes, chunk: int, max_parts: int = 10) -> list[tuple[str, bytes]]:
    reader = MultipartReader(boundary, io.BytesIO, max_parts=max_parts)
    for i in range(0, len(body), chunk):
        reader.feed(body[i : i + chunk])
    return [(p.filename, p.file.read()) for p in reader.finish()]


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 4096, 10**9])
def test_parts_survive_any_chunking(chunk):
    files = {"a.md": b"# A\r\n\r\nline\r\n--not a boundary\r\n", "b.bin": bytes(range(256)) * 8, "empty.txt": b""}
    ctype, body = multipart(files)
    assert _read(body, boundary_of(ctype), chunk) == list(files.items())


def test_a_big_part_streams_through_a_small_buffer():
    data = random.Random(7).randbytes(8 * 2**20)
    ctype, body = multipart({"big.bin": data})
    reader = MultipartReader(boundary_of(ctype), io.BytesIO, max_parts=1)
    peak = 0
    for i in range(0, len(body), 65536):
        reader.feed(body[i : i + 65536])
        peak = max(peak, len(reader._buf))
    (part,) = reader.finish()
    assert part.size == len(data) and part.file.read() == data
    assert peak < 200  # a delimiter's length, never a chunk's


def test_plain_fields_are_dropped_and_file_parts_counted():
    boundary = "XyZ"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="note"\r\n\r\n' + "x" * 5000 + "\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="k.md"\r\n\r\nkeep\r\n'
            f"--{boundary}--\r\n").encode()
    assert _read(body, boundary.encode(), 100) == [("k.md", b"keep")]
    _, many = multipart({f"f{i}.md": b"x" for i in range(3)})
    with pytest.raises(TooManyParts):
        _read(many, boundary_of(_), 50, max_parts=2)


@pytest.mark.parametrize("body, message", [
    (b"--B\r\nContent-Disposition: form-data; name=f; filename=a\r\n\r\nno end", "closing multipart boundary"),
    (b"--B\r\nContent-Type: text/plain\r\n\r\nx\r\n--B--", "Content-Disposition"),
    (b"--B\r\nX: " + b"h" * (MAX_HEADER_BYTES + 10), "headers are over"),
    (b"--Bjunk\r\n", "unexpected bytes after a multipart boundary"),
])
def test_malformed_bodies_are_multipart_errors(body, message):
    with pytest.raises(MultipartError, match=message):
        _read(body, b"B", 13)


@pytest.mark.parametrize("ctype", ["application/json", "multipart/form-data", ""])
def test_a_content_type_without_a_multipart_boundary_is_refused(ctype):
    with pytest.raises(MultipartError):
        boundary_of(ctype)
