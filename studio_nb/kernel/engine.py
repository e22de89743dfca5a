"""The local engine: runs a Pipeline in-process on anyio, applying each node's policy.

One request is a recursive walk from the source: run a node (with its retries, timeout,
concurrency slot and events), then route its output along the edges that accept it.
Every run is recorded in the request's trace (``RequestContext.trace``). The same walk
serves replays (a node whose input is what a recorded request saw reuses that request's
output: ``replay.py``) and breakpoints (the walk awaits ``ctx.on_pause`` before a node,
holding no concurrency slot).
Fan-out and ParallelGroup branches run in a task group, so they overlap; everything else
is a plain ``await`` chain, which keeps the per-hop overhead to a few microseconds.

Other engines (Ray) subclass this and override ``call_operator``: the graph walk,
policies and events stay the same, only where an operator executes changes.
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import anyio

from studio_nb.kernel.errors import LoopLimitExceeded, OperatorFailed, OperatorTimeout, StudioError, WiringError
from studio_nb.kernel.context import RequestContext, _current
from studio_nb.kernel.events import StepEvent, global_events
from studio_nb.kernel.graph import Node
from studio_nb.kernel.group import Branches
from studio_nb.kernel.scheduling import PriorityLimiter, SessionOrder
from studio_nb.kernel.trace import TraceRecord
from studio_nb.kernel.typing_utils import type_name


#: users whose own last error each node remembers (the least recently failing dropped first)
MAX_ERROR_USERS = 1024


@dataclass
class OperatorStats:
    """Live counters per node, shown by the Studio page and the REST graph endpoint.

    ``last_error`` is the last failure of anyone's request. An error's text may quote what
    a user asked or uploaded, so each user's own last error is kept too (``error_for``):
    a server shows a user theirs, not someone else's.
    """

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
    errors_by_user: OrderedDict[str, str] = field(default_factory=OrderedDict, repr=False)

    def record_error(self, status: str, error: str, user: str | None) -> None:
        """A failed (or to be retried) attempt of ``user``'s request (None: no user named)."""
        self.failures += 1
        self.last_status, self.last_error = status, error
        if user is not None:
            self.errors_by_user.pop(user, None)
            self.errors_by_user[user] = error
            while len(self.errors_by_user) > MAX_ERROR_USERS:
                self.errors_by_user.popitem(last=False)

    def error_for(self, user: str) -> str | None:
        """The last error of ``user``'s own requests at this node, if any."""
        return self.errors_by_user.get(user)

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
        ctx.trace.started()
        fresh = ctx.replay is None  # a replay starts from the recorded message: clean
        try:
            if ctx.session_id is None:
                await self._run_node(pipeline, pipeline.source, value, ctx, fresh)
            else:
                async with self._sessions.turn(ctx.session_id):
                    await self._run_node(pipeline, pipeline.source, value, ctx, fresh)
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

    def _skip(self, p: Any, ctx: RequestContext, node: Node, reason: str, value: Any, visit: int,
              passes: bool = True) -> Any:
        """Record and announce a skipped node; returns what flows on (its input, for a chain node)."""
        stats = self.stats_for(node.name)
        stats.skipped += 1
        stats.last_status = "skipped"
        out = value if passes else None
        ctx.trace.begin(node.name, value, output=out, status="skipped", kind=node.kind, group=node.group,
                        visit=visit, note=reason)
        self._event(p, ctx, node.name, "skipped", error=reason)
        return out

    @staticmethod
    def _node_for(node: Node, ctx: RequestContext) -> Node:
        """``node`` as this request runs it: with the request's stand-in operator, if any."""
        op = ctx.overrides.get(node.name) if ctx.overrides else None
        if op is None or op is node.op:
            return node
        shadow = copy.copy(node)  # same edges and group; another operator for this request only
        shadow.op = op
        return shadow

    async def _reuse(self, p: Any, node: Node, rec: TraceRecord, ctx: RequestContext, visit: int) -> Any:
        """Stand in for running ``node``: what the recorded run produced (replay.py)."""
        plan = ctx.replay
        failed = rec.status == "failed"  # an optional node that failed: its input flowed on
        out = plan.reuse(rec.input if failed else rec.output)
        if failed:
            ctx.degraded[node.name] = rec.error or "failed"
        emitted = tuple(plan.reuse(item) for item in rec.emitted)
        if ctx.emit is not None:
            for item in emitted:
                await ctx.emit(node.name, item)
        ctx.trace.add(TraceRecord(
            node.name, plan.reuse(rec.input), out, rec.status, 0.0, rec.attempt, True, node.kind, node.group,
            visit, error=rec.error, note=rec.note, emitted=emitted,
        ))
        self._event(p, ctx, node.name, "reused")
        return out

    def _recorded(self, node: Node, ctx: RequestContext, visit: int, value: Any,
                  fresh: bool) -> tuple[Any, bool, TraceRecord | None]:
        """For a replaying request: the value ``node`` gets, whether it runs, and the record to
        reuse instead (None: run it)."""
        plan = ctx.replay
        if plan is None:
            return value, fresh, None
        value, fresh = plan.enter(node.name, visit, value, fresh)
        if fresh or node.is_group:
            return value, fresh, None
        rec = plan.reusable(node.name, visit)
        if rec is None or (rec.status == "failed" and not node.policy.optional):
            return value, True, None  # nothing usable recorded: it runs, and what follows with it
        return value, False, rec

    async def _pause(self, p: Any, node: Node, value: Any, ctx: RequestContext, visit: int) -> tuple[Any, float]:
        """Wait at a breakpoint before ``node`` (holding no slot); returns the message to go on
        with and the time paused."""
        if ctx.on_pause is None or node.name not in ctx.breakpoints:
            return value, 0.0
        if ctx.replay is not None and ctx.replay.resumes_at(node.name, visit):
            return value, 0.0  # a resumed request continues from here, it does not stop again
        self._event(p, ctx, node.name, "paused")
        t0 = time.perf_counter()
        value = await ctx.on_pause(node.name, visit, value)
        return value, (time.perf_counter() - t0) * 1e3

    # ------------------------------------------------------------------ graph walk
    async def _run_node(self, p: Any, node: Node, value: Any, ctx: RequestContext, fresh: bool = True) -> None:
        """Run ``node`` and route its output on. ``fresh`` is False while a replaying request
        carries exactly what the recorded one did (the node's recorded output is reused)."""
        node = self._node_for(node, ctx)
        visit = ctx.trace.next_visit(node.name)
        value, fresh, rec = self._recorded(node, ctx, visit, value, fresh)
        if rec is not None:
            out = await self._reuse(p, node, rec, ctx, visit)
        elif not node.enabled or node.name in ctx.disabled:
            out = self._skip(p, ctx, node, "disabled", value, visit)
        else:
            value, paused_ms = await self._pause(p, node, value, ctx, visit)
            if node.is_group:
                out, fresh = await self._run_group(p, node, value, ctx, visit, fresh, paused_ms)
            elif (reason := node.op.skip_reason(value)) is not None:
                out = self._skip(p, ctx, node, reason, value, visit)
            else:
                try:
                    out = await self._attempts(p, node, value, ctx, visit, paused_ms)
                except Exception as exc:
                    if not node.policy.optional:
                        raise
                    ctx.degraded[node.name] = f"{type(exc).__name__}: {exc}"
                    out = value
        await self._route(p, node, out, ctx, fresh)

    async def _route(self, p: Any, node: Node, out: Any, ctx: RequestContext, fresh: bool = True) -> None:
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
            await self._run_node(p, targets[0].dst, out, ctx, fresh)
            return
        try:
            async with anyio.create_task_group() as tg:
                for edge in targets:
                    tg.start_soon(self._run_node, p, edge.dst, out, ctx, fresh)
        except BaseExceptionGroup as group:
            raise _first_error(group) from None

    async def _run_group(self, p: Any, node: Node, value: Any, ctx: RequestContext, visit: int = 0,
                         fresh: bool = True, paused_ms: float = 0.0) -> tuple[Any, bool]:
        """Run the branches concurrently, then the join; returns (output, whether anything ran
        for real). In a replay, clean branches and a clean join are reused one by one."""
        if fresh:  # a replay announces the group once it knows whether anything in it runs
            self._event(p, ctx, node.name, "running")
        record = ctx.trace.begin(node.name, value, kind="group", visit=visit, paused_ms=paused_ms)
        t0 = time.perf_counter()
        result = Branches(value)
        ran = [fresh]

        async def branch(member: Node) -> None:
            member = self._node_for(member, ctx)
            mvisit = ctx.trace.next_visit(member.name)
            mvalue, mfresh, rec = self._recorded(member, ctx, mvisit, value, fresh)
            if rec is not None:
                out = await self._reuse(p, member, rec, ctx, mvisit)
                if rec.status == "completed":
                    result.results[member.name] = out
                elif rec.status == "skipped":
                    result.skipped[member.name] = rec.note or "skipped"
                else:
                    result.errors[member.name] = rec.error or "failed"
                return
            ran[0] = True
            if not member.enabled or member.name in ctx.disabled:
                result.skipped[member.name] = "disabled"
                self._skip(p, ctx, member, "disabled", mvalue, mvisit, passes=False)
                return
            mvalue, mpaused = await self._pause(p, member, mvalue, ctx, mvisit)
            reason = member.op.skip_reason(mvalue)
            if reason is not None:
                result.skipped[member.name] = reason
                self._skip(p, ctx, member, reason, mvalue, mvisit, passes=False)
                return
            try:
                result.results[member.name] = await self._attempts(p, member, mvalue, ctx, mvisit, mpaused)
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
            out, joined = result, ran[0]
            if node.join is not None:
                out, joined = await self._run_join(p, self._node_for(node.join, ctx), result, ctx, ran[0])
        except BaseException as exc:
            status = "cancelled" if isinstance(exc, anyio.get_cancelled_exc_class()) else "failed"
            ms = (time.perf_counter() - t0) * 1e3
            record.status, record.duration_ms, record.error = status, ms, f"{type(exc).__name__}: {exc}"
            if not fresh:
                self._event(p, ctx, node.name, "running")
            self._event(p, ctx, node.name, status, duration_ms=ms, error=str(exc))
            raise
        ms = (time.perf_counter() - t0) * 1e3
        record.status, record.output, record.duration_ms, record.reused = "completed", out, ms, not joined
        if joined:
            ctx.add_timing(node.name, ms)
            if not fresh:
                self._event(p, ctx, node.name, "running")
            self._event(p, ctx, node.name, "completed", duration_ms=ms)
        else:
            self._event(p, ctx, node.name, "reused")
        return out, joined

    async def _run_join(self, p: Any, join: Node, result: Branches, ctx: RequestContext,
                        fresh: bool) -> tuple[Any, bool]:
        visit = ctx.trace.next_visit(join.name)
        value, fresh, rec = self._recorded(join, ctx, visit, result, fresh)
        if rec is not None and rec.status == "completed":
            return await self._reuse(p, join, rec, ctx, visit), False
        value, paused_ms = await self._pause(p, join, value, ctx, visit)
        return await self._attempts(p, join, value, ctx, visit, paused_ms), True

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
        if (lim is None or lim.capacity != capacity or lim.queue_capacity != pol.queue_capacity
                or lim.per_user != pol.per_user):
            lim = self._limiters[node.name] = PriorityLimiter(capacity, pol.queue_capacity, pol.on_full, name=node.name,
                                                              per_user=pol.per_user)
        return lim

    async def call_operator(self, node: Node, value: Any, ctx: RequestContext, emit: Any) -> Any:
        """Execute the operator once. The override point for other engines."""
        return await node.op.invoke(value, emit, ctx.request_id)

    async def _attempts(self, p: Any, node: Node, value: Any, ctx: RequestContext, visit: int = 0,
                        paused_ms: float = 0.0) -> Any:
        """Run ``node`` under its policy: slot, timeout, retries with backoff, events, stats,
        and a trace record per attempt."""
        pol, op = node.policy, node.op
        stats = self.stats_for(node.name)
        limiter = self._limiter(node)
        streamed = False
        emit = None
        emitted: list[Any] = []  # stream-only items, kept in the trace so a replay can show them again
        if op.streaming:
            name, sink, stream_only = node.name, ctx.emit, op.stream_types

            async def emit(item: Any) -> None:
                nonlocal streamed
                if stream_only and isinstance(item, stream_only):
                    emitted.append(item)
                if sink is not None:
                    streamed = True
                    await sink(name, item)

        attempt = 0
        while True:
            if limiter is not None:
                stats.waiting += 1
                try:
                    await limiter.acquire(ctx.priority, ctx.user)
                finally:
                    stats.waiting -= 1
            stats.in_flight += 1
            self._event(p, ctx, node.name, "running", attempt=attempt)
            emitted.clear()
            record = ctx.trace.begin(node.name, value, kind=node.kind, group=node.group, visit=visit,
                                     attempt=attempt, paused_ms=paused_ms if attempt == 0 else 0.0)
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
                record.status, record.duration_ms = "cancelled", ms
                stats.last_status = "cancelled"
                self._event(p, ctx, node.name, "cancelled", duration_ms=ms, attempt=attempt)
                raise
            except Exception as exc:
                ms = (time.perf_counter() - t0) * 1e3
                ctx.add_timing(node.name, ms)
                retry = attempt < pol.max_retries and op.idempotent and not streamed
                status, error = ("retry" if retry else "failed"), f"{type(exc).__name__}: {exc}"
                stats.record_error(status, error, ctx.user)
                record.status, record.duration_ms, record.error = status, ms, error
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
                record.status, record.output, record.duration_ms = "completed", out, ms
                record.emitted = tuple(emitted)
                ctx.add_timing(node.name, ms)
                self._event(p, ctx, node.name, "completed", duration_ms=ms, attempt=attempt)
                return out
            finally:
                stats.in_flight -= 1
                if limiter is not None:
                    limiter.release(ctx.user)
            await anyio.sleep(pol.backoff_ms * (2**attempt) / 1000)
            attempt += 1
