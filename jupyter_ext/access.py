"""Who may touch a session: its owner, the Jupyter user who created it.

One rule for the WebSocket and REST handlers, so they cannot drift apart: a session that
does not exist is ``unknown_session`` (404), another user's session is ``forbidden`` (403).
"""

from __future__ import annotations

from typing import Any


class AccessDenied(Exception):
    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def request_user(handler: Any) -> str:
    """The name sessions are owned by, for the user authenticated on ``handler``.

    Jupyter's built-in token/password login has one shared secret and invents a random
    anonymous user per browser (per request for token-only clients), which would make a
    session unreachable from the next request. Such a server is single-user by design, so
    its requests all map to ``StudioExtension.shared_token_user``. Any other identity
    provider (JupyterHub, a custom one) names real users, and their names are used.
    """
    shared = handler.settings.get("studio_shared_token_user")
    if shared and type(handler.identity_provider).__name__ in _BUILTIN_PROVIDERS:
        return shared
    return user_name(handler.current_user)


_BUILTIN_PROVIDERS = {"IdentityProvider", "PasswordIdentityProvider", "LegacyIdentityProvider"}


def user_name(current_user: Any) -> str:
    """The authenticated Jupyter user's name (``User.username``; older servers used str/dict)."""
    for attr in ("username", "name"):
        value = getattr(current_user, attr, None)
        if value:
            return str(value)
    if isinstance(current_user, dict):
        return str(current_user.get("username") or current_user.get("name"))
    return str(current_user)


def check_session(memory: Any, session_id: str, user: str, *, must_exist: bool) -> str | None:
    """Raise AccessDenied unless ``user`` may use ``session_id``; returns its owner.

    ``must_exist=False`` lets a chat start a new session (owner None).
    """
    owner = memory.owner(session_id)
    if owner is None:
        if must_exist:
            raise AccessDenied("unknown_session", f"no session {session_id!r}; list yours at studio/api/sessions", 404)
        return None
    if owner != user:
        raise AccessDenied("forbidden", f"session {session_id!r} belongs to another user; use a session of yours", 403)
    return owner
