"""Replay: run a request again from one node, reusing what its trace recorded upstream.

The engine walks the graph exactly as for a new request. A value is *clean* while it is
what the recorded request saw at that point: a node that receives a clean value does not
run, its recorded output is reused (``reused=True`` in the new trace, its streamed-only
items such as the evidence are shown again). The node replayed from, and every changed
node (new params, another operator), run for real, and what they produce is *dirty*:
every node it reaches runs too. So whatever the graph's shape, only what is downstream of
the change runs — a ParallelGroup reuses its clean branches and reruns the changed one and
its join; a type-routed edge follows whatever a rerun node returns now; a feedback edge
back to an upstream node runs that node again, since its input is dirty.

Records are matched by node *and visit* (the n-th run of that node in the request), so a
node that ran twice through a feedback loop is reused with the right output each time.
A record that cannot be reused (the recorded request failed there, or never got there)
makes that node run for real.

Resuming a paused request elsewhere is the same walk: everything up to the breakpoint is
clean, and the paused node receives the (possibly edited) pending message (``inputs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from studio_nb.kernel.errors import WiringError
from studio_nb.kernel.trace import Trace, TraceRecord

#: a node and which of its runs: ("prompt_builder", 0) is its first run in the request
NodeVisit = tuple[str, int]
_REUSABLE = ("completed", "skipped", "failed")  # failed: only for optional nodes (the engine checks)


@dataclass
class ReplayPlan:
    """What a replaying request reuses and where it starts running (see the module doc)."""

    recorded: dict[NodeVisit, TraceRecord]
    starts: frozenset[NodeVisit] = frozenset()
    changed: frozenset[str] = frozenset()
    #: messages fed to a node instead of what reaches it (a resumed breakpoint's pending message)
    inputs: dict[NodeVisit, Any] = field(default_factory=dict)
    #: applied to every reused message (e.g. to give it the new request's id)
    rebind: Callable[[Any], Any] | None = None

    @classmethod
    def from_trace(
        cls,
        pipeline: Any,
        trace: Trace,
        *,
        from_: str | NodeVisit | None = None,
        changed: Iterable[str] = (),
        inputs: dict[NodeVisit, Any] | None = None,
        rebind: Callable[[Any], Any] | None = None,
    ) -> "ReplayPlan":
        """Check the request against ``pipeline`` and build the plan; errors name the fix."""
        recorded: dict[NodeVisit, TraceRecord] = {}
        for rec in trace:
            if rec.status != "running":  # a run still in progress (a paused request) has no output
                recorded[(rec.operator, rec.visit)] = rec  # a retried run: its last attempt counts
        ran = list(dict.fromkeys(name for name, _ in recorded))
        known = sorted(pipeline.nodes)
        starts: set[NodeVisit] = set()
        if from_ is not None:
            name, visit = (from_, None) if isinstance(from_, str) else from_
            if name not in pipeline.nodes:
                raise WiringError(f"cannot replay from {name!r}: pipeline {pipeline.name!r} has no such operator; "
                                  f"operators: {', '.join(known)}")
            visits = sorted(v for n, v in recorded if n == name)
            if not visits:
                raise WiringError(f"cannot replay from {name!r}: it did not run in this request; "
                                  f"operators that ran: {', '.join(ran) or 'none'}")
            if visit is None:
                visit = visits[0]
            elif visit not in visits:
                raise WiringError(f"cannot replay from run {visit} of {name!r}: it ran {len(visits)} time(s)")
            starts.add((name, visit))
        changed = frozenset(changed)
        unknown = sorted(changed - set(pipeline.nodes))
        if unknown:
            raise WiringError(f"cannot change {', '.join(map(repr, unknown))}: no such operator in pipeline "
                              f"{pipeline.name!r}; operators: {', '.join(known)}")
        if not (starts or changed or inputs):
            raise WiringError("nothing to replay: say where to start (from_='prompt_builder') or what to change "
                              "(params={...} or replace={...})")
        source = pipeline.source.name if pipeline.source is not None else None
        if (source, 0) not in recorded:
            raise WiringError(f"the trace has no run of the source {source!r}, so there is no message to replay")
        return cls(recorded, frozenset(starts), changed, dict(inputs or {}), rebind)

    def source_input(self, source: str) -> Any:
        """The message the recorded request entered with (what a replay starts from)."""
        value = self.recorded[(source, 0)].input
        return self.rebind(value) if self.rebind is not None else value

    def enter(self, name: str, visit: int, value: Any, fresh: bool) -> tuple[Any, bool]:
        """The value ``name`` receives on this visit, and whether it must run for real."""
        key = (name, visit)
        if key in self.inputs:
            return self.inputs[key], True
        return value, fresh or key in self.starts or name in self.changed

    def reusable(self, name: str, visit: int) -> TraceRecord | None:
        rec = self.recorded.get((name, visit))
        return rec if rec is not None and rec.status in _REUSABLE else None

    def resumes_at(self, name: str, visit: int) -> bool:
        """True where a resumed request continues (its breakpoint is not hit again)."""
        return (name, visit) in self.inputs

    def reuse(self, value: Any) -> Any:
        return self.rebind(value) if self.rebind is not None else value


__all__ = ["NodeVisit", "ReplayPlan"]
