"""A private domain's name is routed for its owner only, also after a restart (issue #21,
finding 9), over a real ``jupyter server`` child process with two users (alice, bob), the
real pipeline and models, a real WebSocket client.

Before the fix alice asking about "bob zebra proj" got ``done.domains ==
['bob_zebra_proj']`` (the router was global and named bob's upload in her answer and its
trace), and after a restart no uploaded domain was routed by name (only the bundled docs
were registered with the router at warm-up).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

from tests.jupyter.conftest import Client, multipart
from tests.jupyter.identity import token
from tests.jupyter.server_proc import JupyterServerProcess

pytestmark = pytest.mark.slow

DOMAIN = "bob_zebra_proj"
NOTES = (b"# Zebra project\n\nThe zebra project keeps its ledger in quince tokens, "
         b"reconciled every Tuesday by the stripe committee.\n")
QUESTION = "What does the bob zebra proj say about the ledger?"


async def fetch(srv, user, path, **kw):
    req = HTTPRequest(f"{srv.url}studio/api/{path}", headers={**token(user), **kw.pop("headers", {})},
                      request_timeout=600, **kw)
    return json.loads((await AsyncHTTPClient().fetch(req)).body)


async def ready(srv, timeout=900):
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        try:
            if (await fetch(srv, "alice", "health"))["runtime"]["status"] == "ready":
                return
        except (OSError, Exception):  # not listening yet, or warming up
            pass
        await asyncio.sleep(1)
    raise TimeoutError("the Studio server did not warm up")


async def ask(srv, user, session, rid):
    ws = Client(await websocket_connect(HTTPRequest(f"ws://127.0.0.1:{srv.port}/studio/api/chat",
                                                    headers=token(user))))
    await ws.send({"message": QUESTION, "session_id": session, "request_id": rid})
    frames = await ws.until_done(rid, timeout=600)
    ws.ws.close()
    assert frames[-1]["type"] == "done", frames[-1]
    return frames[-1]


async def test_a_private_domain_is_routed_for_its_owner_only_also_after_a_restart(tmp_path):
    srv = JupyterServerProcess(tmp_path, tmp_path / "data", max_tokens=8,
                               identity_provider="tests.jupyter.identity.TwoUsers").start()
    try:
        await ready(srv)
        ctype, body = multipart({"zebra.md": NOTES})
        await fetch(srv, "bob", f"knowledge/{DOMAIN}/files", method="POST", body=body,
                    headers={"Content-Type": ctype})
        assert DOMAIN in (await ask(srv, "bob", "bob-route", "b1"))["domains"]
        done = await ask(srv, "alice", "alice-route", "a1")
        assert DOMAIN not in done["domains"] and "zebra_proj" not in json.dumps(done)
        trace = await fetch(srv, "alice", "sessions/alice-route/trace")
        assert "zebra_proj" not in json.dumps(trace)  # not in the router's matches either
    finally:
        srv.stop()

    srv = JupyterServerProcess(tmp_path, tmp_path / "data", max_tokens=8,
                               identity_provider="tests.jupyter.identity.TwoUsers").start()
    try:
        await ready(srv)
        assert DOMAIN in (await ask(srv, "bob", "bob-route-2", "b2"))["domains"]
        assert DOMAIN not in (await ask(srv, "alice", "alice-route-2", "a2"))["domains"]
    finally:
        srv.stop()
