"""Errors a user can meet, each with a stable ``code``.

The base class and the kernel's errors (wiring, configuration, timeouts, back-pressure)
are defined in ``studio_nb/kernel/errors.py`` and re-exported here; the application's
own errors follow. The code travels unchanged into WebSocket ``error`` frames, CLI exit
messages and REST responses, so clients can react to the kind of failure without parsing
prose. Every message should say what happened and how to fix it.
"""

from __future__ import annotations

from studio_nb.kernel.errors import (  # noqa: F401  (re-exported: one place to import errors from)
    BusyError,
    ConfigError,
    LoopLimitExceeded,
    OperatorFailed,
    OperatorTimeout,
    StudioError,
    WiringError,
)


class ModelNotFoundError(StudioError, FileNotFoundError):
    code = "model_not_found"


class BudgetExceededError(StudioError):
    code = "too_long"


class ToolError(StudioError):
    code = "tool_error"


class PathEscapeError(ToolError, PermissionError):
    code = "path_escape"


class ForbiddenError(StudioError, PermissionError):
    """The caller may not do this (write a shared or another user's domain, a global toggle)."""

    code = "forbidden"


class UnknownSessionError(StudioError, KeyError):
    code = "unknown_session"

    def __str__(self) -> str:  # KeyError would repr() the message
        return self.args[0] if self.args else ""


class TurnStateError(StudioError):
    """A turn is not in the state the call needs: resuming one that is not paused,
    replaying one that has not finished, snapshotting one that is running."""

    code = "turn_state"
