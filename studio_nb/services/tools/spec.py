"""What a tool is (ToolSpec) and what calling one produced (ToolCall).

Both are frozen, JSON-friendly records: specs are shown to the model and the Studio page,
calls travel into the prompt, the turn record and the WebSocket ``done`` frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Pool = Literal["io", "cpu"]


@dataclass(frozen=True)
class ToolSpec:
    """A tool's public description.

    ``parameters`` is a JSON schema for the keyword arguments; ``pool`` says where it runs
    ("io": waits on disks/sockets, many at once; "cpu": computes, few at once);
    ``side_effects`` marks tools that change the world (none of the built-ins do);
    ``timeout_s`` bounds one call.
    """

    name: str
    description: str
    parameters: dict = field(default_factory=lambda: {"type": "object", "properties": {}})
    pool: Pool = "io"
    side_effects: bool = False
    timeout_s: float = 10.0

    def to_dict(self) -> dict:
        return {"name": self.name, "description": self.description, "parameters": self.parameters,
                "pool": self.pool, "side_effects": self.side_effects, "timeout_s": self.timeout_s}


@dataclass(frozen=True)
class ToolCall:
    """One finished call: ``result`` on success, else ``error`` (and its ``error_code``)."""

    name: str
    arguments: dict
    result: Any
    error: str | None
    duration_ms: float
    error_code: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return {"name": self.name, "arguments": self.arguments, "result": self.result, "error": self.error,
                "error_code": self.error_code, "duration_ms": round(self.duration_ms, 3)}
