"""Test identity providers: a token names a user, as JupyterHub or a custom login would.

Importable without pytest so a server child process can be configured with them
(``--ServerApp.identity_provider_class=tests.jupyter.identity.ManyUsers``).
"""

from __future__ import annotations

from jupyter_server.auth.identity import IdentityProvider, User


class TwoUsers(IdentityProvider):
    """``alice-token`` -> alice, ``bob-token`` -> bob; anything else is anonymous (403)."""

    users = {"alice-token": "alice", "bob-token": "bob"}

    async def get_user_token(self, handler):  # noqa: D401
        name = self.users.get(self.get_token(handler) or "")
        if name is None:
            return None
        return User(username=name, name=name, display_name=name)


class ManyUsers(TwoUsers):
    """alice, bob and user00..user15, each with the token ``<name>-token``."""

    users = {f"{n}-token": n for n in ["alice", "bob", *(f"user{i:02d}" for i in range(16))]}


def token(user: str) -> dict[str, str]:
    """The Authorization header for ``user``."""
    return {"Authorization": f"token {user}-token"}
