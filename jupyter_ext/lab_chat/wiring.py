"""Which chat member a server runs (``StudioExtension.chat_member``), and setting it up.

``auto`` (the default): when jupyter-ai's persona manager is loaded, Studio is a persona
(``persona.py``; the persona manager routes messages to it and wires the stop button);
otherwise, when jupyterlab-chat is loaded, Studio answers @-mentions itself through the
chat manager (``native.py``); without jupyterlab-chat there is no chat to join and nothing
is imported. ``native`` / ``persona`` force one; ``off`` joins no chat.

Either way the chat WebSocket is replaced by the authored one (``authored.py``), so the
author of a message is the user Jupyter authenticated.
"""

from __future__ import annotations

import importlib.util
import logging
from types import SimpleNamespace
from typing import Any

log = logging.getLogger(__name__)

MODES = ("auto", "native", "persona", "off")


def _loaded(serverapp: Any, name: str) -> bool:
    manager = getattr(serverapp, "extension_manager", None)
    ext = getattr(manager, "extensions", {}).get(name) if manager is not None else None
    return bool(ext is not None and getattr(ext, "enabled", False))


def choose(mode: str, serverapp: Any) -> str:
    """The member the server runs: "native", "persona" or "off"."""
    if mode == "off" or importlib.util.find_spec("jupyterlab_chat") is None:
        return "off"
    if "chat_manager" not in serverapp.web_app.settings:
        return "off"  # jupyterlab-chat is installed but its server extension is not enabled
    if mode == "auto":
        return "persona" if _loaded(serverapp, "jupyter_ai_persona_manager") else "native"
    return mode


def studio_user_rule(extension: Any) -> Any:
    """Chat sender name -> Studio user, by ``jupyter_ext.access``'s rule (one shared-token
    user on a single-user server, real names otherwise)."""
    from jupyter_ext.access import is_single_user

    serverapp = extension.serverapp
    shim = SimpleNamespace(settings=serverapp.web_app.settings, identity_provider=serverapp.identity_provider)

    def studio_user(sender: str) -> str:
        if is_single_user(shim):
            return serverapp.web_app.settings["studio_shared_token_user"]
        return str(sender)

    return studio_user


def start(extension: Any) -> Any:
    """Set up the chosen member; returns what ``stop`` closes (None when off)."""
    from jupyter_ext.lab_chat.authored import install
    from jupyter_ext.lab_chat.member import ChatMember
    from jupyter_ext.lab_chat.native import NativeChats

    serverapp = extension.serverapp
    mode = choose(extension.chat_member, serverapp)
    extension.chat_member_mode = mode
    if mode == "off":
        return None
    settings = serverapp.web_app.settings
    if not install(serverapp.web_app):
        log.info("Studio chat member: chats use a shared Y document (RTC); answers there use shared knowledge only")
    member = ChatMember(extension.runtime, root_dir=serverapp.root_dir, workspace=extension.user_workspace)
    natives = NativeChats(member, settings["chat_manager"], studio_user_rule(extension))
    settings["studio_chat_member"] = member
    settings["studio_chat_author"] = natives.author_of
    if mode == "native":
        natives.start()
        log.info("Studio chat member: answering @%s in JupyterLab chats", member.sender)
        return natives
    log.info("Studio chat member: a jupyter-ai persona (jupyter_ai.personas entry point)")
    return None


__all__ = ["MODES", "choose", "start", "studio_user_rule"]
