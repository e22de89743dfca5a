"""UserInputOp: where every request enters, from any front end."""

from __future__ import annotations

from studio_nb.errors import StudioError
from studio_nb.kernel import Operator
from studio_nb.messages import UserMessage


class UserInputOp(Operator):
    """Normalises a chat message and refuses what cannot be answered (empty, too long).

    A plain string is accepted too, so ``pipe["user_input"]("hi")`` works in a cell.
    The length cap is in characters and sits in front of everything else: a huge
    message is refused before any model sees it.
    """

    def __init__(self, max_chars: int = 8000) -> None:
        self.max_chars = max_chars

    def process(self, msg: UserMessage | str) -> UserMessage:
        if isinstance(msg, str):
            msg = UserMessage(msg)
        text = msg.content.strip() if isinstance(msg.content, str) else None
        if not text:
            raise StudioError("the message is empty; type a question", code="empty_message")
        if len(text) > self.max_chars:
            raise StudioError(
                f"the message has {len(text)} characters, more than the limit of {self.max_chars}; "
                "shorten it or ingest long text as a document (studio-nb ingest)",
                code="too_long",
            )
        if not msg.session_id or len(msg.session_id) > 128:
            raise StudioError("session_id must be 1-128 characters", code="bad_session")
        if text == msg.content:
            return msg
        from dataclasses import replace

        return replace(msg, content=text)
