"""The chat WebSocket that writes each message under the user Jupyter authenticated.

jupyterlab-chat 0.25's WebSocket handler (``WSChatHandler``) stores a new message under
the ``sender`` the client put in the frame when there is one — any connected user could
write as another. Studio answers with the *author's* memory and private knowledge, so the
author must be the authenticated user: this subclass replaces the frame's ``sender``
with the user name Jupyter authenticated on the connection before jupyterlab-chat stores
it (the member then maps that name to its Studio user with ``jupyter_ext.access``'s rule). ``install`` puts it in the place of the original
handler's route.

Under RTC (jupyter-collaboration's shared Y document) there is no per-message identity
to check at all: any collaborator can write any field of the document. The member then
answers only from shared knowledge (``native.UNVERIFIED``), never from a private domain.
"""

from __future__ import annotations

from typing import Any



def authored_handler() -> type:
    from jupyterlab_chat.websocket_handler import WSChatHandler

    class AuthoredWSChatHandler(WSChatHandler):
        """``WSChatHandler`` whose new messages carry the authenticated user as sender."""

        def _handle_new_message(self, msg: Any, model: Any) -> None:
            msg.sender = None  # jupyterlab-chat then stores current_user.username, registered at open
            super()._handle_new_message(msg, model)

    return AuthoredWSChatHandler


def install(web_app: Any) -> bool:
    """Swap jupyterlab-chat's WebSocket handler for the authored one on every route that
    uses it; False when no route does (RTC transport, or jupyterlab-chat not loaded)."""
    from jupyterlab_chat.websocket_handler import WSChatHandler

    authored = authored_handler()
    swapped = False
    stack = [web_app.default_router, web_app.wildcard_router]
    while stack:
        router = stack.pop()
        for rule in getattr(router, "rules", ()):
            if rule.target is WSChatHandler:
                rule.target = authored
                swapped = True
            elif hasattr(rule.target, "rules"):
                stack.append(rule.target)
    return swapped


__all__ = ["authored_handler", "install"]
