"""Fixtures for the Jupyter extension tests: a real Jupyter server (pytest-jupyter) with
the Studio extension and the real Studio pipeline (real model, small max_tokens).

pytest-jupyter has no pytest11 entry point and ``pytest_plugins`` is only allowed in the
root conftest, so its fixtures and async-test hooks are imported here; conftest hooks
apply only to the tests in this folder.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pytest_jupyter.jupyter_server import *  # noqa: F401,F403  (jp_serverapp, jp_fetch, jp_ws_fetch, ...)

from tests.conftest import MAX_TOKENS  # "long" tests ask for more explicitly
from tests.jupyter.identity import TwoUsers  # noqa: F401  (re-exported for the tests)


@pytest.fixture(scope="session")
def studio_data_dir(tmp_path_factory) -> Any:
    """One data dir for the whole run: the bundled docs are ingested once, then reused."""
    return tmp_path_factory.mktemp("studio-data")


def studio_config(data_dir: Any, /, **extra: Any) -> dict[str, Any]:
    overrides = {"max_tokens": MAX_TOKENS, "k": 2}  # short prompts and answers: fast on CPU
    overrides.update(extra.pop("overrides", {}))
    cfg = {
        "data_dir": str(data_dir),
        "pipeline_overrides": overrides,
        # an in-process server shares this test process (and studio-nb's loop) with every
        # other test and gets a fresh event loop per test; the child-process servers
        # (server_proc.py, the browser and reliability tests) run turns on their loop
        "turns_on_server_loop": False,
    }
    cfg.update(extra)
    return cfg


@pytest.fixture
def studio_extra() -> dict[str, Any]:
    """Tests override this to change StudioExtension traits."""
    return {}


@pytest.fixture
def server_extra() -> dict[str, Any]:
    """Tests override this (parametrize) to change ServerApp traits."""
    return {}


@pytest.fixture
def jp_server_config(studio_data_dir, studio_extra, server_extra):
    return {
        "ServerApp": {"jpserver_extensions": {"jupyter_ext": True}, **server_extra},
        "StudioExtension": studio_config(studio_data_dir, **studio_extra),
    }


def multipart(files: dict[str, bytes]) -> tuple[str, bytes]:
    """A multipart/form-data body with one ``files`` field per entry: (content type, body)."""
    import uuid

    boundary = uuid.uuid4().hex
    parts = []
    for name, data in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
        )
    return f"multipart/form-data; boundary={boundary}", b"".join(parts) + f"--{boundary}--\r\n".encode()


# ---------------------------------------------------------------- a tiny WebSocket client
class Client:
    """Reads frames from one socket; ``until_done`` collects a request's frames in order."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.pending: list[dict[str, Any]] = []

    async def send(self, frame: Any) -> None:
        await self.ws.write_message(frame if isinstance(frame, (str, bytes)) else json.dumps(frame),
                                    binary=isinstance(frame, bytes))

    async def recv(self, timeout: float = 120) -> dict[str, Any]:
        msg = await asyncio.wait_for(self.ws.read_message(), timeout)
        assert msg is not None, "the server closed the socket"
        return json.loads(msg)

    async def until_done(self, request_id: str, timeout: float = 180) -> list[dict[str, Any]]:
        """Frames of ``request_id`` up to its done/error frame; other requests' frames are kept."""
        out = [f for f in self.pending if f.get("request_id") == request_id]
        self.pending = [f for f in self.pending if f.get("request_id") != request_id]
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while not out or out[-1]["type"] not in ("done", "error"):
            frame = await self.recv(max(0.1, end - loop.time()))
            if frame.get("request_id") == request_id:
                out.append(frame)
            else:
                self.pending.append(frame)
        return out

    async def next_error(self, timeout: float = 30) -> dict[str, Any]:
        frame = await self.recv(timeout)
        assert frame["type"] == "error", frame
        return frame


@pytest.fixture
def studio_ws(jp_ws_fetch):
    async def connect(**kw: Any) -> Client:
        return Client(await jp_ws_fetch("studio", "api", "chat", **kw))

    return connect
