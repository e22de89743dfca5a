"""The local engine: runs a Pipeline in-process on anyio, applying each node's policy.

One request is a recursive walk from the source: run a node (with its retries, timeout,
concurrency slot and events), then route its output along the edges that accept it.
Fan-out and ParallelGroup branches run in a task group, so they overlap; everything else
is a plain ``await`` chain, which keeps the per-hop overhead to a few microseconds.

Other engines (Ray) subclass this and override ``call_operator``: the graph walk,
policies and events stay the same, only where an operator executes changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import anyio

from studio_nb.kernel.errors import LoopLimitExceeded, OperatorFailed, OperatorTimeout, StudioError, WiringError
from studio_nb.kernel.context import RequestContext, _current
from studio_nb.kernel.events import StepEvent, global_events
from studio_nb.kernel.graph import Node
from studio_nb.kernel.group import Branches
from studio_nb.kernel.scheduling import PriorityLimiter, SessionOrder
from studio_nb.kernel.typing_utils import type_name


@dataclass
class OperatorStats:
    """Live counters per node, shown by the Studio page and the REST graph endpoint."""

    runs: int = 0
    failures: int = 0
    skipped: int = 0
    in_flight: int = 0
    total_ms: float = 0.0
    last_ms: float | None = None
    last_status: str | None = None
    last_error: str | None = None
    waiting: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def mean_ms(self) -> float | None:
        return self.total_ms / self.runs if self.runs else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "failures": self.failures,
            "skipped": self.skipped,
            "in_flight": self.in_flight,
            "waiting": self.waiting,
            "mean_ms": None if self.mean_ms is None else round(self.mean_ms, 3),
            "last_ms": None if self.last_ms is None else round(self.last_ms, 3),
            "last_status": self.last_status,
            "last_error": self.last_error,
        }


def _first_error(exc: BaseException) -> BaseException:
    """Unwrap the ExceptionGroup a failed task group raises into the first real error."""
    while isinstance(exc, BaseExceptionGroup):
        real = [e for e in exc.exceptions if not isinstance(e, anyio.get_cancelled_exc_class())]
        exc = (real or list(exc.exceptions))[0]
    return exc


class LocalEngine:
    name = "local"

    def __init__(self) -> None:
        self._limiters: dict[str, PriorityLimiter] = {}
        self._sessions = SessionOrder()
        self.stats: dict[str, OperatorStats] = {}

    # ------------------------------------------------------------------ entry point
    async def execute(self, pipeline: Any, value: Any, ctx: RequestContext) -> dict[str, Any]:
        """Run one request through ``pipeline``; returns terminal outputs by node name."""
        token = _current.set(ctx)
        try:
            if ctx.session_id is None:
                await self._run_node(pipeline, pipeline.source, value, ctx)
            else:
                async with self._sessions.turn(ctx.session_id):
                    await self._run_node(pipeline, pipeline.source, value, ctx)
        finally:
            _current.reset(token)
        return ctx.outputs

    def stats_for(self, name: str) -> OperatorStats:
        stats = self.stats.get(name)
        if stats is None:
            stats = self.stats[name] = OperatorStats()
        return stats

    # ------------------------------------------------------------------ events
    def _event(self, p: Any, ctx: RequestContext, name: str, status: str, **kw: Any) -> None:
        if not (ctx.on_event or p.events or global_events):
            return
        ev = StepEvent(name, status, ctx.request_id, ctx.session_id, pipeline=p.name, **kw)
        if ctx.on_event is not None:
            try:
                ctx.on_event(ev)
            except Exception:  # the request must survive a broken listener
                import logging

                logging.getLogger(__name__).exception("on_event callback failed")
        p.events.publish(ev)
        global_events.publish(ev)

    def _skip(self, p: Any, ctx: RequestContext, node: Node, reason: str) -> None:
        stats = self.stats_for(node.name)
        stats.skipped += 1
        stats.last_status = "skipped"
        self._event(p, ctx, node.name, "skipped", error=reason)

    # ------------------------------------------------------------------ graph walk
    async def _run_node(self, p: Any, node: Node, value: Any, ctx: RequestContext) -> None:
        if not node.enabled or node.name in ctx.disabled:
            self._skip(p, ctx, node, "disabled")
            out = value
        elif node.is_group:
            out = await self._run_group(p, node, value, ctx)
        elif (reason := node.op.skip_reason(value)) is not None:
            self._skip(p, ctx, node, reason)
            out = value
        else:
            try:
                out = await self._attempts(p, node, value, ctx)
            except Exception as exc:
                if not node.policy.optional:
                    raise
                ctx.degraded[node.name] = f"{type(exc).__name__}: {exc}"
                out = value
        await self._route(p, node, out, ctx)

    async def _route(self, p: Any, node: Node, out: Any, ctx: RequestContext) -> None:
        if not node.out_edges:
            ctx.outputs[node.name] = out
            return
        targets = [e for e in node.out_edges if e.accepts(out)]
        if not targets:
            takes = ", ".join(f"{e.dst.name} ({type_name(e.dst.input_type)})" for e in node.out_edges)
            raise WiringError(f"{node.name} produced {type(out).__name__} but no edge accepts it; edges: {takes}")
        for edge in targets:
            if edge.feedback:
                count = ctx.loops.get(edge.key, 0) + 1
                if count > edge.max_loops:
                    raise LoopLimitExceeded(
                        f"feedback {edge.src.name} -> {edge.dst.name} exceeded max_loops={edge.max_loops}"
                    )
                ctx.loops[edge.key] = count
        if len(targets) == 1:
            await self._run_node(p, targets[0].dst, out, ctx)
            return
        try:
            async with anyio.create_task_group() as tg:
                for edge in targets:
                    tg.start_soon(self._run_node, p, edge.dst, out, ctx)
        except BaseExceptionGroup as group:
            raise _first_error(group) from None

    async def _run_group(self, p: Any, node: Node, value: Any, ctx: RequestContext) -> Any:
        self._event(p, ctx, node.name, "running")
        t0 = time.perf_counter()
        result = Branches(value)

        async def branch(member: Node) -> None:
            if not member.enabled or member.name in ctx.disabled:
                result.skipped[member.name] = "disabled"
                self._skip(p, ctx, member, "disabled")
                return
            reason = member.op.skip_reason(value)
            if reason is not None:
                result.skipped[member.name] = reason
                self._skip(p, ctx, member, reason)
                return
            try:
                result.results[member.name] = await self._attempts(p, member, value, ctx)
            except Exception as exc:
                if not member.policy.optional:
                    raise
                result.errors[member.name] = ctx.degraded[member.name] = f"{type(exc).__name__}: {exc}"

        try:
            try:
                async with anyio.create_task_group() as tg:
                    for member in node.members:
                        tg.start_soon(branch, member)
            except BaseExceptionGroup as group:
                raise _first_error(group) from None
            out = await self._attempts(p, node.join, result, ctx) if node.join is not None else result
        except BaseException as exc:
            status = "cancelled" if isinstance(exc, anyio.get_cancelled_exc_class()) else "failed"
            self._event(p, ctx, node.name, status, duration_ms=(time.perf_counter() - t0) * 1e3, error=str(exc))
            raise
        ms = (time.perf_counter() - t0) * 1e3
        ctx.add_timing(node.name, ms)
        self._event(p, ctx, node.name, "completed", duration_ms=ms)
        return out

    # ------------------------------------------------------------------ one operator
    def slot_capacity(self, node: Node) -> int | None:
        """How many requests may run ``node`` at once (None = no limit).

        Engines with worker pools override this: on Ray a pooled operator's
        ``concurrency`` counts per worker, so the slots grow with the pool.
        """
        return node.policy.concurrency

    def _limiter(self, node: Node) -> PriorityLimiter | None:
        pol, capacity = node.policy, self.slot_capacity(node)
        if capacity is None:
            return None
        lim = self._limiters.get(node.name)
        if lim is None or lim.capacity != capacity or lim.queue_capacity != pol.queue_capacity:
            lim = self._limiters[node.name] = PriorityLimiter(capacity, pol.queue_capacity, pol.on_full, name=node.name)
        return lim

    async def call_operator(self, node: Node, value: Any, ctx: RequestContext, emit: Any) -> Any:
        """Execute the operator once. The override point for other engines."""
        return await node.op.invoke(value, emit, ctx.request_id)

    async def _attempts(self, p: Any, node: Node, value: Any, ctx: RequestContext) -> Any:
        """Run ``node`` under its policy: slot, timeout, retries with backoff, events, stats."""
        pol, op = node.policy, node.op
        stats = self.stats_for(node.name)
        limiter = self._limiter(node)
        streamed = False
        emit = None
        if op.streaming and ctx.emit is not None:
            name, sink = node.name, ctx.emit

            async def emit(item: Any) -> None:
                nonlocal streamed
                streamed = True
                await sink(name, item)

        attempt = 0
        while True:
            if limiter is not None:
                stats.waiting += 1
                try:
                    await limiter.acquire(ctx.priority)
                finally:
                    stats.waiting -= 1
            stats.in_flight += 1
            self._event(p, ctx, node.name, "running", attempt=attempt)
            t0 = time.perf_counter()
            try:
                if pol.timeout_ms is None:
                    out = await self.call_operator(node, value, ctx, emit)
                else:
                    with anyio.move_on_after(pol.timeout_ms / 1000) as scope:
                        out = await self.call_operator(node, value, ctx, emit)
                    if scope.cancelled_caught:
                        raise OperatorTimeout(f"operator {node.name!r} timed out after {pol.timeout_ms:g} ms")
            except anyio.get_cancelled_exc_class():
                ms = (time.perf_counter() - t0) * 1e3
                stats.last_status = "cancelled"
                self._event(p, ctx, node.name, "cancelled", duration_ms=ms, attempt=attempt)
                raise
            except Exception as exc:
                ms = (time.perf_counter() - t0) * 1e3
                ctx.add_timing(node.name, ms)
                retry = attempt < pol.max_retries and op.idempotent and not streamed
                stats.failures += 1
                stats.last_status, stats.last_error = ("retry" if retry else "failed"), f"{type(exc).__name__}: {exc}"
                self._event(
                    p, ctx, node.name, "retry" if retry else "failed", duration_ms=ms, error=str(exc), attempt=attempt
                )
                if not retry:
                    if isinstance(exc, StudioError):
                        raise
                    raise OperatorFailed(node.name, exc) from exc
            else:
                ms = (time.perf_counter() - t0) * 1e3
                stats.runs += 1
                stats.total_ms += ms
                stats.last_ms = ms
                stats.last_status = "completed"
                ctx.add_timing(node.name, ms)
                self._event(p, ctx, node.name, "completed", duration_ms=ms, attempt=attempt)
                return out
            finally:
                stats.in_flight -= 1
                if limiter is not None:
                    limiter.release()
            await anyio.sleep(pol.backoff_ms * (2**attempt) / 1000)
            attempt += 1
