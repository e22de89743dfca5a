"""The built-in tools and ``default_registry`` that wires them up.

Knowledge tools take any object with ``.domains()`` and ``.search(query, domains=, k=)``
(the KnowledgeManager's shape) so this module does not import the knowledge service.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

from studio_nb.errors import ToolError
from studio_nb.services.tools.calculator import MAX_EXPRESSION_CHARS, calculate
from studio_nb.services.tools.files import DEFAULT_READ_BYTES, MAX_READ_BYTES, Workspace
from studio_nb.services.tools.pyhelp import python_help
from studio_nb.services.tools.registry import ToolRegistry
from studio_nb.services.tools.spec import ToolSpec

MAX_HIT_CHARS = 800


def datetime_now(timezone: str = "UTC") -> dict:
    """The current date and time in an IANA time zone such as 'Asia/Shanghai'."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ToolError(f"unknown time zone {timezone!r}; use an IANA name like 'UTC' or 'Asia/Shanghai'") from None
    now = datetime.now(zone)
    return {"timezone": timezone, "iso": now.isoformat(timespec="seconds"), "date": now.date().isoformat(),
            "time": now.strftime("%H:%M:%S"), "weekday": now.strftime("%A"), "utc_offset": now.strftime("%z")}


def _plain(obj: Any) -> dict:
    if isinstance(obj, str):
        return {"name": obj}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: v for k, v in dataclasses.asdict(obj).items() if isinstance(v, (str, int, float, bool, type(None)))}
    return {"name": getattr(obj, "name", str(obj))}


class KnowledgeTools:
    """list_domains / knowledge_search over an injected knowledge-manager-like object."""

    def __init__(self, knowledge: Any) -> None:
        self.knowledge = knowledge

    def _require(self) -> Any:
        if self.knowledge is None:
            raise ToolError("no knowledge base is configured; ingest documents first (studio-nb ingest)")
        return self.knowledge

    def list_domains(self, *, user: str | None = None) -> list[dict]:
        """The knowledge domains that can be searched (by ``user``: the shared ones and theirs)."""
        km = self._require()
        return [_plain(d) for d in (km.domains() if user is None else km.domains(user=user))]

    def knowledge_search(self, query: str, domain: str | None = None, k: int = 5, *, user: str | None = None) -> list[dict]:
        """The ``k`` passages most relevant to ``query`` (in one ``domain`` or all ``user`` may read)."""
        km = self._require()
        if domain is not None:
            names = [d["name"] for d in self.list_domains(user=user)]
            if domain not in names:
                raise ToolError(f"unknown domain {domain!r}; available: {', '.join(names) or '(none)'}")
        from studio_nb.services.knowledge.types import hit_dict

        where = [domain] if domain else None
        hits = km.search(query, domains=where, k=k) if user is None else km.search(query, domains=where, k=k, user=user)
        return [hit_dict(h, max_chars=MAX_HIT_CHARS) for h in hits]


def _obj(properties: dict, required: tuple[str, ...] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


def default_registry(workspace: Path | str, knowledge: Any = None, *, io_workers: int = 8,
                     cpu_workers: int = 2) -> ToolRegistry:
    """A registry with every built-in tool; file tools see only ``workspace``."""
    ws = Workspace(workspace)
    kt = KnowledgeTools(knowledge)
    reg = ToolRegistry(io_workers=io_workers, cpu_workers=cpu_workers)
    text = {"type": "string", "minLength": 1}
    reg.register(ToolSpec(
        "calculator", "Evaluate an arithmetic expression: numbers, + - * / // % **, parentheses, "
        "sqrt sin cos tan log exp abs round min max floor ceil factorial, constants pi e.",
        _obj({"expression": {**text, "maxLength": MAX_EXPRESSION_CHARS}}, ("expression",)),
        pool="cpu", timeout_s=2.0), calculate)
    reg.register(ToolSpec(
        "python_help", "Signature and docstring of a Python object by dotted name, e.g. 'json.dumps'.",
        _obj({"object": {**text, "maxLength": 200}}, ("object",)), pool="io", timeout_s=10.0), python_help)
    reg.register(ToolSpec(
        "datetime_now", "Current date and time in an IANA time zone (default UTC).",
        _obj({"timezone": {**text, "default": "UTC", "maxLength": 64}}), pool="io", timeout_s=2.0), datetime_now)
    reg.register(ToolSpec(
        "list_domains", "The knowledge domains available for search.", _obj({}), pool="io", timeout_s=5.0),
        kt.list_domains)
    reg.register(ToolSpec(
        "knowledge_search", "Search the knowledge base; returns passages with their sources.",
        _obj({"query": {**text, "maxLength": 2000}, "domain": {"type": ["string", "null"]},
              "k": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5}}, ("query",)),
        pool="io", timeout_s=15.0), kt.knowledge_search)
    reg.register(ToolSpec(
        "read_file", f"Read a UTF-8 text file inside the workspace {ws.root} (up to max_bytes).",
        _obj({"path": text, "max_bytes": {"type": "integer", "minimum": 1, "maximum": MAX_READ_BYTES,
                                          "default": DEFAULT_READ_BYTES}}, ("path",)),
        pool="io", timeout_s=5.0), ws.read_file)
    reg.register(ToolSpec(
        "list_files", "List files in a workspace folder matching a glob pattern.",
        _obj({"path": {**text, "default": "."}, "pattern": {**text, "default": "*"},
              "recursive": {"type": "boolean", "default": False},
              "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 200}}),
        pool="io", timeout_s=5.0), ws.list_files)
    return reg
