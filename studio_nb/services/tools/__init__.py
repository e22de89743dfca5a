"""Tools the assistant can call: a registry with bounded IO/CPU pools and the built-ins.

Public names (docs/contracts.md "Tools"): ToolSpec, ToolCall, ToolRegistry,
default_registry, select_tool_calls. Importing this package is cheap; tool arguments are
checked by ``schema.py`` (a subset of JSON Schema, without importing jsonschema).
"""

from studio_nb.services.tools.builtins import default_registry
from studio_nb.services.tools.registry import ToolRegistry
from studio_nb.services.tools.selection import select_tool_calls
from studio_nb.services.tools.spec import ToolCall, ToolSpec

__all__ = ["ToolCall", "ToolRegistry", "ToolSpec", "default_registry", "select_tool_calls"]
