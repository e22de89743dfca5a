"""The one Studio pipeline of a kernel, shared by ``%sage_chat`` and ``ChatPanel``.

Loading models and indexes is the slow part of a turn, so every front end in a kernel
uses the same pipeline object. It is created on first use (``%load_ext`` stays cheap)
from, in order: a pipeline handed to ``use_pipeline(pipe)``; the magic's config traits
(``%config StudioMagics.config`` / ``.overrides``); the ``STUDIO_NB_CONFIG`` environment
variable (path to a YAML config); the embedded defaults.
"""

from __future__ import annotations

import os
import threading
from typing import Any

ENV_VAR = "STUDIO_NB_CONFIG"

_pipe: Any = None
_lock = threading.Lock()


def use_pipeline(pipe: Any) -> Any:
    """Make ``pipe`` (a StudioPipeline) the kernel's pipeline; returns it.

    A tutorial creates its own (``create_studio_pipeline(data_dir=tmp)``) and hands it to
    the magic and the panel with this.
    """
    global _pipe
    with _lock:
        _pipe = pipe
    return pipe


def current_pipeline() -> Any | None:
    """The kernel's pipeline if one was created or handed over, else None."""
    return _pipe


def kernel_pipeline(config: Any = None, overrides: dict[str, Any] | None = None) -> Any:
    """The kernel's pipeline, created on first call with ``create_studio_pipeline``.

    ``config`` (a dict or YAML path) falls back to ``$STUDIO_NB_CONFIG``; ``overrides`` are
    passed as keyword arguments (e.g. ``{"data_dir": "/tmp/x"}``). Later calls return the
    same object whatever they pass.
    """
    global _pipe
    with _lock:
        if _pipe is None:
            from studio_nb.studio import create_studio_pipeline

            config = config or os.environ.get(ENV_VAR) or None
            _pipe = create_studio_pipeline(config, **dict(overrides or {}))
        return _pipe


def reset_kernel_pipeline() -> None:
    """Forget (and close) the kernel's pipeline; the next use creates a fresh one."""
    global _pipe
    with _lock:
        pipe, _pipe = _pipe, None
    if pipe is not None and hasattr(pipe, "close"):
        pipe.close()
