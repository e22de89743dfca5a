"""The chat member: Studio answering in a JupyterLab ``.chat`` file.

    member = ChatMember(runtime, root_dir=root, workspace=lambda user: root)
    await member.answer(chat, message, author="alice")

**One chat file is one session per user.** A chat's stable id names the session
(``chat:<id>``), inside the namespace of the user who wrote the message (studio_nb.access):
in a chat alice and bob share, alice's questions are answered with her memory and the
domains she may read, bob's with his — a private domain of one is never cited to the other.
The author is the user Jupyter authenticated for the message (``authored.py``), never
the ``sender`` a client wrote.

A message is one of three things: a slash command (``studio_nb.commands``, answered by the
pipeline's own operations, ``/learn`` reporting progress in the reply), a plain-words
request for what a command does (answered with the command's name, nothing is done), or a
question: a Turn whose evidence, then synthesis, stream into one reply message, rendered
by ``render.message`` only. ``stop(chat, author)`` stops the author's running turn there
(``/stop``, and the persona's ``cancel_response``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from typing import Any, Callable

from studio_nb import commands, present
from studio_nb.errors import BusyError, StudioError

from jupyter_ext.lab_chat import attachments, render

log = logging.getLogger(__name__)

#: the member's user name in chats (what an @-mention names)
BOT_USERNAME = "studio-nb"
BOT_DISPLAY = "Studio"
#: at most this many message rewrites a second while an answer streams (each one saves the .chat file)
UPDATES_PER_SECOND = 4.0


def bot_user() -> Any:
    from jupyterlab_chat.models import User

    return User(username=BOT_USERNAME, name=BOT_DISPLAY, display_name=BOT_DISPLAY, initials="S", bot=True)


_MENTION = re.compile(rf"@(?:{BOT_DISPLAY}|{BOT_USERNAME})\b", re.I)


def _field(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def addressed(message: Any) -> bool:
    """Whether a chat message is for Studio: it @-mentions it."""
    if BOT_USERNAME in (_field(message, "mentions") or ()):
        return True
    return bool(_MENTION.search(_field(message, "body") or ""))


def question_of(message: Any) -> str:
    """The message's text without the @-mention."""
    return _MENTION.sub("", _field(message, "body") or "").strip()


class ChatMember:
    """Studio in JupyterLab's chat (see the module docstring)."""

    def __init__(self, runtime: Any, *, root_dir: str | Path, workspace: Callable[[str], str],
                 as_user: Callable[[], Any] = bot_user) -> None:
        self.runtime = runtime
        #: who the replies are from: Studio's own chat user, or a jupyter-ai persona's
        self.as_user = as_user
        self.sender = as_user().username
        self.root_dir = Path(root_dir).expanduser().resolve()
        self.workspace = workspace
        #: (chat id, author) -> the turn being written there
        self.running: dict[tuple[str, str], Any] = {}

    # ------------------------------------------------------------------ replies
    def _post(self, chat: Any, body: str) -> str:
        from jupyterlab_chat.models import NewMessage

        return chat.add_message(NewMessage(body=body, sender=self.sender))

    def _edit(self, chat: Any, msg_id: str, body: str) -> None:
        from jupyterlab_chat.models import Message

        chat.update_message(Message(id=msg_id, body=body, time=time.time(), sender=self.sender, raw_time=False))

    def _writing(self, chat: Any, msg_id: str | None) -> None:
        try:
            chat.broadcast_writing_status(self.as_user(), {"messageID": msg_id} if msg_id else None)
        except Exception:  # a typing indicator is cosmetic
            log.debug("writing status failed", exc_info=True)

    def session_id(self, chat: Any) -> str:
        return f"chat:{chat.get_id()}"

    # ------------------------------------------------------------------ entry points
    async def answer(self, chat: Any, message: Any, author: str) -> None:
        """Answer one message written by ``author`` (authenticated) in ``chat``."""
        text = question_of(message)
        if not text:
            self._post(chat, f"Ask me something, or type `@{BOT_DISPLAY} /help`.")
            return
        if commands.is_command(text):
            await self.command(chat, text, author)
            return
        hint = commands.hint(text)
        if hint is not None:
            self._post(chat, hint)
            return
        await self.ask(chat, message, text, author)

    def stop(self, chat: Any, author: str) -> bool:
        """Stop ``author``'s running answer in ``chat``; False when none runs."""
        turn = self.running.get((chat.get_id(), author))
        if turn is None:
            return False
        turn.stop()
        return True

    # ------------------------------------------------------------------ commands
    async def command(self, chat: Any, text: str, author: str) -> None:
        pipe = await self.runtime.ready()
        reply = self._post(chat, f"`{text.split()[0]}` …")
        cmds = commands.ChatCommands(pipe, user=author, session_id=self.session_id(chat),
                                     workspace=self.workspace(author), stop=lambda: self.stop(chat, author))
        loop = asyncio.get_running_loop()
        lines: list[str] = []

        def progress(line: str) -> None:  # from the ingest thread: edit the reply on the server's loop
            lines.append(line)
            body = "\n\n".join(f"`{ln}`" for ln in lines[-3:])
            loop.call_soon_threadsafe(self._edit, chat, reply, body)

        if text.split()[0] == "/stop":  # answered at once, on this loop
            body = cmds.run(text)
        else:
            self._writing(chat, reply)
            try:
                body = await asyncio.to_thread(cmds.run, text, progress)
            finally:
                self._writing(chat, None)
        await asyncio.sleep(0)  # let queued progress edits land before the result
        self._edit(chat, reply, body)

    # ------------------------------------------------------------------ questions
    def locate(self, pipe: Any, author: str) -> render.Locate:
        """Where a cited passage lies under the Jupyter root, as ``author`` may see it."""

        def find(citation: Any) -> str | None:
            path = pipe.knowledge.locate(citation.domain, citation.path, user=author)
            if path is None:
                return None
            path = path.resolve()
            if self.root_dir not in path.parents:
                return None
            return path.relative_to(self.root_dir).as_posix()

        return find

    def _finished(self, key: tuple[str, str], turn: Any) -> None:
        if turn is not None and self.running.get(key) is turn:  # never a newer turn of the same key
            del self.running[key]

    async def ask(self, chat: Any, message: Any, text: str, author: str) -> None:
        key = (chat.get_id(), author)
        if key in self.running:
            self._post(chat, "Still answering your last question here: wait, or `/stop` it.")
            return
        try:
            release = self.runtime.acquire(author)
        except BusyError as exc:
            self._post(chat, f"**busy**: {exc}")
            return
        reply = self._post(chat, f"_{BOT_DISPLAY} is looking for evidence…_")
        self._writing(chat, reply)
        turn = None
        try:
            pipe = await self.runtime.ready()
            atts = attachments.read(chat, message, self.root_dir)
            turn = pipe.ask(text, session_id=self.session_id(chat), user=author, attachments=atts)
            view = turn.view  # the turn's one live view: the parts below only say when to redraw
            self.running[key] = turn
            locate = self.locate(pipe, author)
            last = 0.0
            async for part in turn:
                kind = present.part_kind(part)
                if kind == "response":  # the answer is whole: the next question may start while the turn winds down
                    self._finished(key, turn)
                now = time.monotonic()
                if kind == "evidence" or (kind == "text" and now - last >= 1.0 / UPDATES_PER_SECOND):
                    last = now
                    self._edit(chat, reply, render.message(view, locate))
            self._edit(chat, reply, render.message(view, locate))
        except StudioError as exc:
            self._edit(chat, reply, f"**error** `{exc.code}`: {exc}")
        except Exception as exc:  # the chat must get an answer, the server must stay up
            log.exception("answering in %s failed", chat.get_path())
            self._edit(chat, reply, f"**error**: {type(exc).__name__}: {exc}")
        finally:
            self._finished(key, turn)
            release()
            self._writing(chat, None)


__all__ = ["BOT_DISPLAY", "BOT_USERNAME", "ChatMember", "addressed", "bot_user", "question_of"]
