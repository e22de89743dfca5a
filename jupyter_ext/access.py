"""Who is asking, and what they may do: the Jupyter side of studio-nb's access rules.

* :func:`request_user` names the user sessions and uploads are owned by.
* :func:`is_admin` says whether they may change what every user sees (global pipeline
  toggles, shared knowledge domains, the server's details in ``health``, every user's
  last operator error in the graph's stats).
* Sessions are ``studio_nb.access``'s rule (``check_session``, re-exported here), the
  same one the magic, the panel and the memory store use: a session id is a name within
  the requesting user's namespace, so bob's ``"s1"`` is never alice's ``"s1"``. Every
  handler passes :func:`request_user` as the namespace; an id bob never used answers
  ``unknown_session`` (404) whether or not alice has one, and a chat, toggle or variant on
  it is his own new session. Nothing about another user's ids can be probed or claimed.
"""

from __future__ import annotations

from typing import Any

from studio_nb.access import check_session

__all__ = ["check_session", "is_admin", "is_single_user", "request_user", "user_name"]


def _builtin_providers() -> tuple[type, ...]:
    from jupyter_server.auth.identity import IdentityProvider, LegacyIdentityProvider, PasswordIdentityProvider

    return (IdentityProvider, PasswordIdentityProvider, LegacyIdentityProvider)


def is_single_user(handler: Any) -> bool:
    """True for Jupyter's own token/password login: one shared secret, hence one person.

    Checked by class identity, not by name or ``isinstance``: a custom provider that
    subclasses ``IdentityProvider`` (or is merely called that) names real users and must
    not be folded into one.
    """
    if not handler.settings.get("studio_shared_token_user"):
        return False
    return type(handler.identity_provider) in _builtin_providers()


def request_user(handler: Any) -> str:
    """The name sessions are owned by, for the user authenticated on ``handler``.

    Jupyter's built-in login invents a random anonymous user per browser (per request for
    token-only clients), which would make a session unreachable from the next request.
    Such a server is single-user by design, so its requests all map to
    ``StudioExtension.shared_token_user``. Any other identity provider (JupyterHub, a
    custom one) names real users, and their names are used.
    """
    if is_single_user(handler):
        return handler.settings["studio_shared_token_user"]
    return user_name(handler.current_user)


def is_admin(handler: Any) -> bool:
    """The single user of a single-user server, or a name in ``StudioExtension.admin_users``."""
    if is_single_user(handler):
        return True
    return request_user(handler) in set(handler.settings.get("studio_admin_users") or ())


def user_name(current_user: Any) -> str:
    """The authenticated Jupyter user's name (``User.username``; older servers used str/dict)."""
    for attr in ("username", "name"):
        value = getattr(current_user, attr, None)
        if value:
            return str(value)
    if isinstance(current_user, dict):
        return str(current_user.get("username") or current_user.get("name"))
    return str(current_user)
