"""The kernel's errors: wiring, configuration, timeouts, back-pressure, loop bounds.

Every error studio-nb raises derives from ``StudioError`` and carries a stable ``code``
that travels unchanged into WebSocket ``error`` frames, CLI messages and REST responses.
The base class and the errors of the dataflow kernel live here, at the bottom of the
layers; the application's own errors (missing models, tools, sessions) are defined in
``studio_nb/errors.py`` on top of them. Every message says what happened and the fix.
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


class WiringError(StudioError, TypeError):
    code = "bad_wiring"


class BusyError(StudioError):
    """A waiting queue or a concurrency cap is full: back-pressure instead of unbounded memory."""

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


class LoopLimitExceeded(StudioError):
    code = "loop_limit"
