"""The dataflow kernel: operators, pipelines, engines, policies, registry, telemetry.

It knows nothing about LLMs: everything here is tested with small pure-Python operators.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names are imported on first use (PEP 562): ``studio_nb.errors`` needs only
# ``kernel.errors``, and ``%load_ext studio_nb`` should not pay for the engine, asyncio
# and the codec before the first chat.
_WHERE = {
    "Branches": "group", "LocalEngine": "engine", "Operator": "operator", "OperatorStats": "engine",
    "ParallelGroup": "group", "Pipeline": "pipeline", "Policy": "policy", "ReplayPlan": "replay",
    "RequestContext": "context", "RunRecord": "operator", "StepEvent": "events", "Trace": "trace",
    "TraceRecord": "trace", "current_request": "context", "global_events": "events", "register": "registry",
}


def __getattr__(name: str) -> Any:
    if name == "codec":
        return importlib.import_module("studio_nb.kernel.codec")
    if name in _WHERE:
        value = getattr(importlib.import_module(f"studio_nb.kernel.{_WHERE[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'studio_nb.kernel' has no attribute {name!r}")


if TYPE_CHECKING:
    from studio_nb.kernel import codec
    from studio_nb.kernel.context import RequestContext, current_request
    from studio_nb.kernel.engine import LocalEngine, OperatorStats
    from studio_nb.kernel.events import StepEvent, global_events
    from studio_nb.kernel.group import Branches, ParallelGroup
    from studio_nb.kernel.operator import Operator, RunRecord
    from studio_nb.kernel.pipeline import Pipeline
    from studio_nb.kernel.policy import Policy
    from studio_nb.kernel.registry import register
    from studio_nb.kernel.replay import ReplayPlan
    from studio_nb.kernel.trace import Trace, TraceRecord

__all__ = [
    "Branches",
    "LocalEngine",
    "Operator",
    "OperatorStats",
    "ParallelGroup",
    "Pipeline",
    "Policy",
    "ReplayPlan",
    "RequestContext",
    "RunRecord",
    "StepEvent",
    "Trace",
    "TraceRecord",
    "codec",
    "current_request",
    "global_events",
    "register",
]
