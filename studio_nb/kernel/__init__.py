"""The dataflow kernel: operators, pipelines, engines, policies, registry, telemetry.

It knows nothing about LLMs: everything here is tested with small pure-Python operators.
"""

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
