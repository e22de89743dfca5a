"""Issue #21 findings 4 and 5 against a real Jupyter server naming two users by token
(alice, bob), the real pipeline and the real embedding model.

4. a body is refused before it is read — without a token, or announced over the limit —
   and an accepted upload streams to disk with the limit counted as it arrives (it was
   read whole into memory first: a 200 MB body without a token cost 1.6 GB);
5. an upload's ingest is bounded (a small PDF of 1,000 pages drawing one stream kept the
   server busy for 320 s), one user runs at most so many at once, and a client that goes
   away cancels its ingest, leaving nothing behind.

Raw sockets send what a browser library would not: headers announcing a body that never
comes, a chunked body that does not stop, a connection dropped mid-ingest.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.jupyter.conftest import multipart
from tests.jupyter.identity import TwoUsers, token
from tests.jupyter.test_isolation import api, upload
from tests.pdf_bomb import page_bomb

pytestmark = pytest.mark.slow

ALICE, BOB = token("alice"), token("bob")
UPLOAD_LIMIT = 1024 * 1024


@pytest.fixture
def server_extra():
    return {"identity_provider_class": TwoUsers}


@pytest.fixture
def studio_extra(tmp_path):
    return {"admin_users": ["alice"], "data_dir": str(tmp_path / "data"), "upload_max_bytes": UPLOAD_LIMIT,
            "ingest_max_concurrent_per_user": 1, "ingest_max_user_chunks": 60,
            "overrides": {"bundled_docs": False}}


async def ready(jp_fetch):
    """Wait until the server's pipeline has warmed up: each test gets a fresh server, which
    builds its pipeline on first use, and on a busy machine the models take longer to load
    than a request's default timeout."""
    await api(jp_fetch, "knowledge", headers=ALICE, request_timeout=600)


class Raw:
    """One HTTP/1.1 request written by hand on a TCP connection."""

    def __init__(self, port: int, base_url: str) -> None:
        self.port, self.base = port, base_url

    async def open(self, method: str, path: str, headers: dict[str, str]) -> "Raw":
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        head = [f"{method} {self.base}studio/api/{path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await self.writer.drain()
        return self

    async def response(self, timeout: float = 60) -> tuple[int, dict]:
        """The status and JSON body of the answer (fails if none comes within ``timeout``)."""
        status_line = await asyncio.wait_for(self.reader.readline(), timeout)
        assert status_line, "the server closed the connection without answering"
        headers = {}
        while (line := await asyncio.wait_for(self.reader.readline(), timeout)) not in (b"\r\n", b""):
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        body = await asyncio.wait_for(self.reader.readexactly(int(headers.get("content-length", 0))), timeout)
        return int(status_line.split()[1]), json.loads(body or b"{}")

    def close(self) -> None:
        self.writer.close()


@pytest.fixture
def raw(jp_http_port, jp_base_url):
    opened: list[Raw] = []

    async def open_(method: str, path: str, headers: dict[str, str]) -> Raw:
        conn = await Raw(jp_http_port, jp_base_url).open(method, path, headers)
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        conn.close()


def _upload_headers(auth: dict[str, str], length: int | None, boundary: str = "B0undary") -> dict[str, str]:
    h = {**auth, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    if length is not None:
        h["Content-Length"] = str(length)
    return h


# ---------------------------------------------------------------- F4
@pytest.mark.parametrize("case", ["upload without a token", "upload over the limit", "JSON without a token",
                                  "JSON over the limit"])
async def test_f4_a_body_is_refused_from_its_headers_before_it_is_read(case, raw, jp_fetch):
    """The headers announce 200 MB and no byte of it is ever sent: an answer can only come
    from a server that decided without reading the body."""
    await ready(jp_fetch)
    big = 200 * 1024 * 1024
    if case.startswith("upload"):
        auth = {} if "without" in case else BOB
        conn = await raw("POST", "knowledge/bob_big/files", _upload_headers(auth, big))
        expect = (403, "forbidden") if "without" in case else (413, "too_large")
    else:
        auth = {} if "without" in case else BOB
        conn = await raw("PUT", "pipeline/variants", {**auth, "Content-Type": "application/json",
                                                      "Content-Length": str(big)})
        expect = (403, "forbidden") if "without" in case else (413, "too_large")
    status, body = await conn.response(timeout=60)
    if expect[0] == 403:  # Jupyter's own checks (identity, XSRF for a request without a token) or ours
        assert status == 403, body
    else:
        assert (status, body.get("code")) == expect, body
        assert "StudioExtension." in body["message"]  # names the setting


async def test_f4_a_chunked_upload_is_cut_off_at_the_limit(raw, jp_fetch, tmp_path):
    """No Content-Length: the limit is counted as the body arrives, and the server stops
    reading long before the client has sent what it meant to (20 MB against a 1 MB limit).
    It answers 413 and closes; the client may see that answer, or only the reset of a
    connection closed with its bytes unread (TCP drops the answer then)."""
    await ready(jp_fetch)
    conn = await raw("POST", "knowledge/bob_chunked/files",
                     {**_upload_headers(BOB, None), "Transfer-Encoding": "chunked"})
    head = b'--B0undary\r\nContent-Disposition: form-data; name="files"; filename="big.md"\r\n\r\n'
    sent, chunk = 0, b"a" * 65536
    answer = asyncio.ensure_future(conn.response(timeout=120))
    try:
        for piece in [head] + [chunk] * 320:
            if answer.done():
                break
            conn.writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await asyncio.wait_for(conn.writer.drain(), 30)
            sent += len(piece)
    except (ConnectionError, OSError, asyncio.TimeoutError):
        pass  # the server closed its side, or stopped reading: either way it read no more
    try:
        status, body = await answer
        assert (status, body["code"]) == (413, "too_large"), body
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    assert sent < 12 * 1024 * 1024, f"the client got to send {sent:,} bytes"
    assert (await api(jp_fetch, "ingests", headers=BOB))["ingests"] == []  # its slot was given back
    folder = tmp_path / "data" / "uploads" / "bob_chunked"
    assert not folder.exists() or not [p for p in folder.iterdir() if not p.name.startswith(".")]


async def test_f4_an_accepted_upload_is_stored_and_answered(jp_fetch, tmp_path):
    await ready(jp_fetch)
    note = b"# Bob's notes\n\nThe okapi ledger lists forty-two quince crates.\n" * 200  # ~13 KB
    out = await upload(jp_fetch, "bob_notes", {"notes.md": note}, BOB)
    assert out["saved"] == [{"name": "notes.md", "bytes": len(note)}] and out["report"]["chunks_added"] > 0
    assert (tmp_path / "data" / "uploads" / "bob_notes" / "notes.md").read_bytes() == note
    hits = await api(jp_fetch, "search", headers=BOB, params={"q": "okapi ledger quince", "domains": "bob_notes"})
    assert hits["hits"] and "okapi" in hits["hits"][0]["text"]


# ---------------------------------------------------------------- F5
async def test_f5_a_page_bomb_is_refused_with_the_limit_named_and_nothing_kept(jp_fetch, tmp_path):
    await ready(jp_fetch)
    bomb = page_bomb(1000, b"zebra quince ledger " * 5000)  # ~100 KB stream drawn by 1,000 pages
    assert len(bomb) < UPLOAD_LIMIT
    out = await upload(jp_fetch, "bob_bomb", {"bomb.pdf": bomb}, BOB, expect=413)
    assert out["code"] == "limit"
    assert "StudioExtension.ingest_max_pdf_content_bytes" in out["message"] and "bomb.pdf" in out["message"]
    domains = await api(jp_fetch, "knowledge", headers=BOB)
    assert "bob_bomb" not in [d["name"] for d in domains["domains"]]
    folder = tmp_path / "data" / "uploads" / "bob_bomb"
    assert not folder.exists() or not [p for p in folder.iterdir() if not p.name.startswith(".")]


async def test_f5_a_users_chunk_total_is_bounded(jp_fetch):
    await ready(jp_fetch)
    many = ("# Big\n\n" + "\n\n".join(f"## Part {i}\n\n" + f"Paragraph {i} about herons. " * 40
                                        for i in range(100))).encode()
    out = await upload(jp_fetch, "bob_many", {"many.md": many}, BOB, expect=413)
    assert out["code"] == "limit" and "StudioExtension.ingest_max_user_chunks" in out["message"]
    await upload(jp_fetch, "bob_small", {"small.md": b"# Small\n\nOne heron.\n"}, BOB)  # room left for small ones


async def test_f5_one_upload_at_a_time_per_user_and_the_slot_comes_back(raw, jp_fetch):
    await ready(jp_fetch)
    body_start = b'--B0undary\r\nContent-Disposition: form-data; name="files"; filename="slow.md"\r\n\r\n# Slow\n'
    holding = await raw("POST", "knowledge/bob_slow/files", _upload_headers(BOB, len(body_start) + 10_000))
    holding.writer.write(body_start)  # ... and the rest never comes
    await holding.writer.drain()
    for _ in range(100):  # the slot is held from the headers on
        if (await api(jp_fetch, "ingests", headers=BOB))["ingests"]:
            break
        await asyncio.sleep(0.1)
    view = (await api(jp_fetch, "ingests", headers=BOB))["ingests"]
    assert [(j["domain"], j["stage"]) for j in view] == [("bob_slow", "receiving")]
    assert (await api(jp_fetch, "ingests", headers=ALICE))["ingests"] == []  # bob's uploads are bob's
    refused = await upload(jp_fetch, "bob_other", {"o.md": b"# O\n\nother\n"}, BOB, expect=429)
    assert refused["code"] == "limit" and "ingest_max_concurrent_per_user" in refused["message"]
    await upload(jp_fetch, "alice_own", {"a.md": b"# A\n\nalice's\n"}, ALICE)  # another user is not held up
    holding.close()
    for _ in range(100):
        if not (await api(jp_fetch, "ingests", headers=BOB))["ingests"]:
            break
        await asyncio.sleep(0.1)
    await upload(jp_fetch, "bob_other", {"o.md": b"# O\n\nother\n"}, BOB)


async def test_f5_an_ingest_runs_off_the_loop_and_a_client_that_leaves_cancels_it(raw, jp_fetch, tmp_path):
    await ready(jp_fetch)
    files = {f"doc{i:02d}.md": ("# Doc %d\n\n" % i + "\n\n".join(
        f"## Section {j}\n\n" + f"Herons of pond {i}-{j} count ledgers at dawn. " * 12 for j in range(6))).encode()
        for i in range(10)}
    ctype, body = multipart(files)
    conn = await raw("POST", "knowledge/bob_gone/files", {**BOB, "Content-Type": ctype,
                                                          "Content-Length": str(len(body))})
    conn.writer.write(body)
    await conn.writer.drain()
    stages = []
    for _ in range(600):
        view = (await api(jp_fetch, "ingests", headers=BOB))["ingests"]  # the loop answers meanwhile
        stages += [j["stage"] for j in view]
        if view and view[0]["stage"] == "embedding":
            break
        await asyncio.sleep(0.05)
    assert "embedding" in stages, stages
    health = await api(jp_fetch, "health", headers=ALICE)
    assert health["runtime"]["status"] == "ready"
    conn.close()  # the client goes away mid-ingest
    for _ in range(600):
        if not (await api(jp_fetch, "ingests", headers=BOB))["ingests"]:
            break
        await asyncio.sleep(0.1)
    assert (await api(jp_fetch, "ingests", headers=BOB))["ingests"] == []
    domains = await api(jp_fetch, "knowledge", headers=BOB)
    assert all(d["name"] != "bob_gone" or d["chunks"] == 0 for d in domains["domains"])
    folder = tmp_path / "data" / "uploads" / "bob_gone"
    assert not folder.exists() or not [p for p in folder.iterdir() if not p.name.startswith(".")]
