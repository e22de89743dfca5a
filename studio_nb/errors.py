"""Errors a user can meet, each with a stable ``code``.

The code travels unchanged into WebSocket ``error`` frames, CLI exit messages and REST
responses, so clients can react to the kind of failure without parsing prose. Every
message should say what happened and how to fix it.
"""

from __future__ import annotations


class StudioError(Exception):
    """Base class of every studio-nb error; ``code`` names the kind of failure."""

    code = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(StudioError, ValueError):
    code = "bad_config"


class ModelNotFoundError(StudioError, FileNotFoundError):
    code = "model_not_found"


class BusyError(StudioError):
    """An operator's waiting queue is full: back-pressure instead of unbounded memory."""

    code = "busy"


class OperatorTimeout(StudioError, TimeoutError):
    code = "timeout"


class OperatorFailed(StudioError):
    """An operator raised; ``operator`` names it and ``__cause__`` holds the original."""

    code = "operator_failed"

    def __init__(self, operator: str, cause: BaseException) -> None:
        super().__init__(f"operator {operator!r} failed: {type(cause).__name__}: {cause}")
        self.operator = operator
        self.cause = cause


class WiringError(StudioError, TypeError):
    code = "bad_wiring"


class LoopLimitExceeded(StudioError):
    code = "loop_limit"


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
