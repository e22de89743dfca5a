"""A jupyterlab-chat WebSocket client, as JupyterLab's chat panel talks to the server.

Frames are jupyterlab-chat 0.25's (``jupyterlab_chat/ws_messages.py``): the client sends
``{"type": "client", "action": "send", "id", "body", "mentions", "attachments"}``; the
server answers with a ``connection`` frame, then a ``message`` frame for every new or
updated message (a streamed answer is the same message id, rewritten).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Callable

BOT = "studio-nb"


class ChatClient:
    def __init__(self, ws: Any, hello: dict[str, Any]) -> None:
        self.ws = ws
        self.hello = hello
        self.messages: dict[str, dict[str, Any]] = {m["id"]: m for m in hello.get("messages", [])}
        self.updates: dict[str, int] = {}

    @classmethod
    async def connect(cls, port: int, path: str, user: str) -> "ChatClient":
        import websockets

        ws = await websockets.connect(f"ws://127.0.0.1:{port}/api/chat/ws/{path}",
                                      additional_headers={"Authorization": f"token {user}-token"},
                                      max_size=2**24)
        hello = json.loads(await asyncio.wait_for(ws.recv(), 60))
        assert hello.get("action") == "connection", hello
        return cls(ws, hello)

    async def send(self, body: str, *, mention: bool = True, **extra: Any) -> str:
        msg_id = str(uuid.uuid4())
        frame = {"type": "client", "action": "send", "id": msg_id, "body": (f"@Studio {body}" if mention else body),
                 "mentions": [BOT] if mention else [], **extra}
        await self.ws.send(json.dumps(frame))
        return msg_id

    async def wait_for(self, check: Callable[[dict[str, Any]], bool], timeout: float = 300) -> dict[str, Any]:
        """The first message (new or updated) for which ``check`` holds."""
        for m in self.messages.values():
            if check(m):
                return m
        async def loop() -> dict[str, Any]:
            while True:
                frame = json.loads(await self.ws.recv())
                if frame.get("action") != "message":
                    continue
                m = frame["message"]
                self.messages[m["id"]] = m
                self.updates[m["id"]] = self.updates.get(m["id"], 0) + 1
                if check(m):
                    return m
        return await asyncio.wait_for(loop(), timeout)

    async def reply(self, containing: str, timeout: float = 300, *, other_than: tuple[str, ...] = ()) -> dict[str, Any]:
        """Studio's message whose body contains ``containing`` (``"<sub>"``: a finished answer's timings
        line), other than the messages whose ids are in ``other_than``."""
        return await self.wait_for(lambda m: m.get("sender") == BOT and m["id"] not in other_than
                                   and containing in (m.get("body") or ""), timeout)

    async def close(self) -> None:
        await self.ws.close()
