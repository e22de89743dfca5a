"""Studio as a jupyter-ai persona, beside Jupyternaut (``jupyter_ai.personas`` entry point).

Written against jupyter-ai-persona-manager 0.2's ``BasePersona``: ``defaults`` (a
``PersonaDefaults``), ``process_message`` (the persona manager calls it for each message
routed to the persona, one at a time), ``stream_message`` (not used: a Studio answer is
rewritten whole as its evidence and synthesis arrive, not appended to) and
``cancel_response`` (the chat's stop button, which that package's front end wires to it).
0.1 had no ``cancel_response`` and took awareness instead of persona state; this module
needs 0.2.

The work is the same ``ChatMember`` the native path uses (``member.py``), found in the
server's settings where the Studio extension put it (``studio_chat_member``), answering
as this persona's chat user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_ai_persona_manager import BasePersona, PersonaDefaults

from jupyter_ext.lab_chat.member import ChatMember

AVATAR = Path(__file__).resolve().parent / "studio.svg"


class StudioPersona(BasePersona):
    """Cited answers over your files, from the Studio pipeline (offline model by default)."""

    @property
    def defaults(self) -> PersonaDefaults:
        return PersonaDefaults(
            name="Studio",
            description="Answers from your documents with cited evidence first, then a checked synthesis; "
            "/learn, /forget, /sources, /mode, /trace, /help.",
            avatar_path=str(AVATAR),
            system_prompt="(the Studio pipeline builds its own prompts)",
        )

    def _member(self) -> ChatMember:
        settings = self.parent.parent.serverapp.web_app.settings
        shared: ChatMember = settings["studio_chat_member"]
        member = getattr(self, "_studio_member", None)
        if member is None:  # the shared member's state, replying as this persona
            member = ChatMember(shared.runtime, root_dir=shared.root_dir, workspace=shared.workspace,
                                as_user=self.as_user)
            member.running = shared.running
            self._studio_member = member
        return member

    def _author(self, message: Any) -> str:
        settings = self.parent.parent.serverapp.web_app.settings
        return settings["studio_chat_author"](self.chat, message)

    async def process_message(self, message: Any) -> None:
        await self._member().answer(self.chat, message, self._author(message))

    async def cancel_response(self) -> None:
        message = self.processing_message
        if message is not None:
            self._member().stop(self.chat, self._author(message))


__all__ = ["StudioPersona"]
