"""Studio in jupyterlab-chat without jupyter-ai: through the server's chat manager.

jupyterlab-chat 0.25's server extension keeps a ``ChatManager`` in the server's settings
(``settings["chat_manager"]``): it emits an ``opened`` event when a chat goes live, and
each chat model lets a server-side member observe new messages, add and update messages,
and show a writing status. ``NativeChats`` joins every chat that opens (Studio appears in
the chat's users, so the @-mention box offers it), and answers each new message that
@-mentions it, as its authenticated author (see ``authored.py``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from jupyter_ext.lab_chat.member import BOT_USERNAME, ChatMember, addressed, bot_user

log = logging.getLogger(__name__)

#: the namespace a message is answered in when its author cannot be verified (RTC chats):
#: shared knowledge only, no one's private domains or memory
UNVERIFIED = "unverified-chat-user"


class NativeChats:
    """Joins the chats jupyterlab-chat opens and answers the messages addressed to Studio."""

    def __init__(self, member: ChatMember, chat_manager: Any, studio_user: Callable[[str], str]) -> None:
        self.member = member
        self.manager = chat_manager
        self.studio_user = studio_user
        self._observers: dict[str, tuple[Any, Any]] = {}
        self._tasks: set[asyncio.Task] = set()

    def start(self) -> None:
        self.manager.observe_chats(self._on_chat_event)
        for chat_id in list(getattr(self.manager, "_chats_by_id", {})):
            self.join(self.manager.get(chat_id))

    async def _on_chat_event(self, logger: Any, schema_id: str, data: dict) -> None:
        action, chat_id = data.get("action"), data.get("chat_id", "")
        if action == "opened":
            self.join(self.manager.get(chat_id))
        elif action in ("closed", "deleted"):
            self.leave(chat_id)

    def join(self, chat: Any) -> None:
        if chat is None or chat.get_id() in self._observers:
            return
        chat.set_user(bot_user())
        handle = chat.observe_messages(lambda event, chat=chat: self._on_message(chat, event))
        self._observers[chat.get_id()] = (chat, handle)

    def leave(self, chat_id: str) -> None:
        entry = self._observers.pop(chat_id, None)
        if entry is not None:
            entry[0].unobserve_messages(entry[1])

    def author_of(self, chat: Any, message: Any) -> str:
        """The Studio user a message is answered for (see ``authored.py``)."""
        from jupyterlab_chat.websocket_model import WsChatModel

        if not isinstance(chat, WsChatModel):  # a shared Y document: the sender field is anyone's to write
            return UNVERIFIED
        return self.studio_user(message.sender)

    def _on_message(self, chat: Any, event: Any) -> None:
        from jupyterlab_chat.models import ChatMessageAction

        message = event.message
        if event.action != ChatMessageAction.CLIENT_MSG_RECEIVED or message.sender == BOT_USERNAME:
            return
        if not addressed(message):
            return
        task = asyncio.ensure_future(self._answer(chat, message, self.author_of(chat, message)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, chat: Any, message: Any, author: str) -> None:
        keep = getattr(chat, "keep_alive", None)
        if keep is None:
            await self.member.answer(chat, message, author)
            return
        with keep():  # the chat stays live until the answer is written, even if every tab closes
            await self.member.answer(chat, message, author)

    def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for chat_id in list(self._observers):
            self.leave(chat_id)


__all__ = ["NativeChats", "UNVERIFIED"]
