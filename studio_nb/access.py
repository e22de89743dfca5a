"""Whose session is it: the one session rule of every front end.

**A session id is a name within its user's namespace.** alice's ``"s1"`` and bob's
``"s1"`` are two different sessions (the memory store keys sessions by ``(user,
session_id)``, and so do per-session toggles, variants and the recent-turn log). So
there is no "someone else's session" to reach: bob naming ``"s1"`` always means *his*
``"s1"`` — a chat there starts or continues his own, a toggle or a variant switches his
own, and history, export, clear, trace and replay of an ``"s1"`` he never used answer
``UnknownSessionError`` (code ``unknown_session``, HTTP 404). Whether alice has an
``"s1"`` changes nothing he can see, so ids cannot be probed, and nothing can be claimed.

The WebSocket, the REST API, ``%sage_chat`` and the ChatPanel all ask
:func:`check_session`; the memory store asks it too for ``history``/``clear``/
``export``/``trace``. ``user=None`` is a trusted in-process caller (a notebook or the
CLI on its own data dir): it means the :data:`LOCAL_USER` namespace, the one those front
ends save under by default; such a caller reaches another user's session by naming that
user. This module imports nothing from Jupyter so that the notebook front ends and the
services can use it too.
"""

from __future__ import annotations

from typing import Protocol

from studio_nb.errors import UnknownSessionError

#: the namespace of in-process callers that name no user (notebooks, the CLI, ``StoredTurn.new``)
LOCAL_USER = "local"


class SessionLookup(Protocol):
    def exists(self, session_id: str, user: str | None = None) -> bool: ...


def namespace(user: str | None) -> str:
    """The namespace ``user``'s session ids live in (``None``: :data:`LOCAL_USER`)."""
    return LOCAL_USER if user is None else user


def unknown_session(session_id: str) -> UnknownSessionError:
    """The error for a session id the caller has no session under."""
    return UnknownSessionError(f"no session {session_id!r}; list yours (studio/api/sessions, %sage_chat sessions)")


def check_session(memory: SessionLookup, session_id: str, user: str | None, *, must_exist: bool) -> str:
    """The namespace of ``user``'s session ``session_id``; ``unknown_session`` if it must
    exist and ``user`` has none of that name.

    ``must_exist=False`` (a chat, a toggle, a variant) always succeeds: the id names a
    session of the caller's own, new or not. The answer depends only on the caller's own
    sessions, never on anyone else's.
    """
    ns = namespace(user)
    if must_exist and not memory.exists(session_id, ns):
        raise unknown_session(session_id)
    return ns


__all__ = ["LOCAL_USER", "check_session", "namespace", "unknown_session"]
