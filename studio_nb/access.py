"""Who may use a session: the one ownership rule of every front end.

The WebSocket, the REST API, ``%sage_chat`` and the ChatPanel all ask
:func:`check_session`; the memory store asks it too for ``history``/``clear``/``export``.
A session belongs to the user who saved its first turn.

A session that does not exist and a session that belongs to someone else get the *same*
answer, ``UnknownSessionError`` (code ``unknown_session``, HTTP 404) with the same
message: a 403 for "exists but not yours" would let anyone probe which session ids
exist. This module imports nothing from Jupyter so that the notebook front ends and the
services can use it too.
"""

from __future__ import annotations

from typing import Protocol

from studio_nb.errors import UnknownSessionError


class OwnerLookup(Protocol):
    def owner(self, session_id: str) -> str | None: ...


def unknown_session(session_id: str) -> UnknownSessionError:
    """The error for a session the caller may not see (missing or another user's)."""
    return UnknownSessionError(f"no session {session_id!r}; list yours (studio/api/sessions, %sage_chat sessions)")


def check_session(memory: OwnerLookup, session_id: str, user: str | None, *, must_exist: bool) -> str | None:
    """Return the owner of ``session_id`` if ``user`` may use it, else raise ``unknown_session``.

    ``must_exist=False`` lets a chat start a new session (returns None: no owner yet).
    ``user=None`` is a trusted in-process caller (a script on the data dir): only
    existence is checked.
    """
    owner = memory.owner(session_id)
    if owner is None:
        if must_exist:
            raise unknown_session(session_id)
        return None
    if user is not None and owner != user:
        raise unknown_session(session_id)
    return owner


def may_use(memory: OwnerLookup, session_id: str, user: str | None) -> bool:
    """True when ``user`` owns ``session_id`` (or it does not exist yet, so it would be theirs)."""
    try:
        check_session(memory, session_id, user, must_exist=False)
    except UnknownSessionError:
        return False
    return True


__all__ = ["check_session", "may_use", "unknown_session"]
