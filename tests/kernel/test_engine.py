"""The local engine's policies, shown from event order and counters (never wall-clock limits)."""

from __future__ import annotations

import contextlib

import asyncio

import anyio
import pytest

from studio_nb.errors import BusyError, OperatorFailed, OperatorTimeout
from studio_nb.kernel import Branches, Operator, ParallelGroup, Pipeline, Policy, current_request
from studio_nb.kernel.testing import Collect, Exclaim, Flaky, Identity, Sleep, Tokens, Upper

pytestmark = pytest.mark.anyio


def _recorder():
    events = []
    return events, events.append


async def test_parallel_group_branches_overlap():
    p = Pipeline("par")
    src = Identity(name="src")
    branches = [Sleep(ms=30, name=f"b{i}") for i in range(3)]
    p.add_source(src)
    p.connect(src, ParallelGroup("fan", branches, join=Collect()))
    events, cb = _recorder()
    out = await p.arun("x", on_event=cb)
    assert out == "b0=x,b1=x,b2=x"
    order = [(e.operator, e.status) for e in events if e.operator.startswith("b")]
    starts = [i for i, (_, s) in enumerate(order) if s == "running"]
    ends = [i for i, (_, s) in enumerate(order) if s == "completed"]
    # every branch started before any branch finished: they ran concurrently
    assert len(starts) == 3 and max(starts) < min(ends)


async def test_serial_chain_does_not_overlap():
    p = Pipeline("serial")
    a, b = Sleep(ms=5, name="a"), Sleep(ms=5, name="b")
    p.add_source(a)
    p.connect(a, b)
    events, cb = _recorder()
    await p.arun("x", on_event=cb)
    assert [(e.operator, e.status) for e in events] == [
        ("a", "running"),
        ("a", "completed"),
        ("b", "running"),
        ("b", "completed"),
    ]


async def test_retries_are_counted_and_succeed():
    p = Pipeline("retry")
    flaky = Flaky(failures=2, policy=Policy(max_retries=2, backoff_ms=1))
    p.add_source(flaky)
    events, cb = _recorder()
    assert await p.arun("ok", on_event=cb) == "ok"
    assert flaky.calls == 3
    assert [e.status for e in events if e.status != "running"] == ["retry", "retry", "completed"]
    assert p.engine.stats["flaky"].failures == 2 and p.engine.stats["flaky"].runs == 1


async def test_retries_exhausted_raise_operator_failed_with_cause():
    p = Pipeline("retry")
    flaky = Flaky(failures=5, policy=Policy(max_retries=1, backoff_ms=1))
    p.add_source(flaky)
    with pytest.raises(OperatorFailed) as info:
        await p.arun("x")
    assert flaky.calls == 2
    assert info.value.operator == "flaky" and isinstance(info.value.cause, RuntimeError)


async def test_non_idempotent_operators_are_not_retried():
    class SideEffect(Flaky):
        idempotent = False

    p = Pipeline("once")
    op = SideEffect(failures=1, policy=Policy(max_retries=3, backoff_ms=1))
    p.add_source(op)
    with pytest.raises(OperatorFailed):
        await p.arun("x")
    assert op.calls == 1


async def test_timeout_fires_and_cancels_the_operator():
    cancelled = []

    class Forever(Operator):
        async def process(self, msg: str) -> str:
            try:
                await anyio.sleep(3600)
            finally:
                cancelled.append(True)
            return msg

    p = Pipeline("t")
    p.add_source(Forever(policy=Policy(timeout_ms=20)))
    events, cb = _recorder()
    with pytest.raises(OperatorTimeout, match="timed out after 20 ms"):
        await p.arun("x", on_event=cb)
    assert cancelled == [True]
    assert events[-1].status == "failed"


async def test_queue_bound_rejects_beyond_capacity():
    p = Pipeline("busy")
    gate = anyio.Event()
    high_water = []

    class Gate(Operator):
        async def process(self, msg: int) -> int:
            await gate.wait()
            return msg

    op = Gate(policy=Policy(concurrency=2, queue_capacity=3, on_full="reject"))
    p.add_source(op)
    results, errors = [], []

    async def one(i: int) -> None:
        try:
            results.append(await p.arun(i))
        except BusyError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        for i in range(50):
            tg.start_soon(one, i)
        await anyio.wait_all_tasks_blocked()  # every request has arrived: running, queued or refused
        stats = p.engine.stats["gate"]
        high_water.append((stats.in_flight, stats.waiting))
        gate.set()
    assert high_water == [(2, 3)]  # 2 running, 3 queued, never more
    assert len(results) == 5 and len(errors) == 45
    assert "busy" in str(errors[0]) and errors[0].code == "busy"


async def test_queue_bound_with_wait_holds_and_serves_everyone():
    p = Pipeline("wait")
    peak = {"in_flight": 0, "waiting": 0}

    class Track(Operator):
        async def process(self, msg: int) -> int:
            stats = p.engine.stats["track"]
            peak["in_flight"] = max(peak["in_flight"], stats.in_flight)
            peak["waiting"] = max(peak["waiting"], stats.waiting)
            await anyio.sleep(0.001)
            return msg

    p.add_source(Track(policy=Policy(concurrency=2, queue_capacity=4, on_full="wait")))
    out = []

    async def one(i: int) -> None:
        out.append(await p.arun(i))

    async with anyio.create_task_group() as tg:
        for i in range(40):
            tg.start_soon(one, i)
    assert sorted(out) == list(range(40))
    assert peak["in_flight"] <= 2
    limiter = p.engine._limiters["track"]
    assert limiter.active == 0 and limiter.waiting == 0


async def test_priority_decides_who_gets_the_slot_first():
    p = Pipeline("prio")
    gate = anyio.Event()
    served = []

    class Gate(Operator):
        async def process(self, msg: str) -> str:
            if msg == "first":
                await gate.wait()
            served.append(msg)
            return msg

    p.add_source(Gate(policy=Policy(concurrency=1, queue_capacity=10)))
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: p.arun("first"))
        await anyio.wait_all_tasks_blocked()  # "first" holds the only slot
        for name, prio in [("low", 0), ("high", 9), ("mid", 5), ("low2", 0)]:
            tg.start_soon(lambda n=name, pr=prio: p.arun(n, priority=pr))
        await anyio.wait_all_tasks_blocked()  # all four wait in the queue
        gate.set()
    assert served == ["first", "high", "mid", "low", "low2"]


async def test_session_order_with_concurrency_across_sessions():
    p = Pipeline("sessions")
    op = Sleep(ms=5)
    p.add_source(op)
    events, cb = _recorder()
    sessions = {"a": [], "b": []}

    async def turn(session: str, i: int) -> None:
        await p.arun(i, session_id=session, on_event=cb, request_id=f"{session}{i}")
        sessions[session].append(i)

    async with anyio.create_task_group() as tg:
        for i in range(4):
            for s in ("a", "b"):
                tg.start_soon(turn, s, i)
                await anyio.sleep(0)  # arrival order: a0 b0 a1 b1 ...
    assert sessions == {"a": [0, 1, 2, 3], "b": [0, 1, 2, 3]}
    # within a session, each turn starts only after the previous one ended
    for s in ("a", "b"):
        seq = [(e.request_id, e.status) for e in events if e.session_id == s]
        assert seq == [(f"{s}{i}", st) for i in range(4) for st in ("running", "completed")]
    # across sessions they overlap: b0 started before a0 completed
    first = [(e.request_id, e.status) for e in events[:3]]
    assert ("a0", "running") in first and ("b0", "running") in first
    assert len(p.engine._sessions) == 0  # no per-session state left behind


async def test_cancellation_reaches_the_running_streaming_operator():
    p = Pipeline("cancel")
    tokens = Tokens(delay_ms=5)
    p.add_source(tokens)
    got = []
    async with contextlib.aclosing(p.astream("w " * 1000)) as stream:
        async for item in stream:
            got.append(item)
            if len(got) == 3:
                break
    # leaving the block closes the stream, which cancels the request and waits for it
    assert tokens.closed
    assert tokens.yielded < 10


async def test_cancelling_the_caller_task_stops_the_operator():
    p = Pipeline("cancel2")
    op = Sleep(ms=10_000)
    p.add_source(op)
    events, cb = _recorder()
    with anyio.move_on_after(0.05):
        await p.arun("x", on_event=cb)
    assert [e.status for e in events] == ["running", "cancelled"]
    assert op.log == [("start", events[0].request_id)]  # never reached its end


async def test_optional_branch_failure_degrades_instead_of_failing():
    p = Pipeline("opt")
    src = Identity(name="src")
    good = Upper(name="good")
    bad = Flaky(failures=99, name="bad", policy=Policy(optional=True))
    p.add_source(src)
    p.connect(src, ParallelGroup("g", [good, bad]))
    out = await p.arun("x")
    assert isinstance(out, Branches)
    assert out.results == {"good": "X"}
    assert "flaky failure" in out.errors["bad"]


async def test_required_branch_failure_fails_the_request():
    p = Pipeline("req")
    src = Identity(name="src")
    p.add_source(src)
    p.connect(src, ParallelGroup("g", [Upper(name="good"), Flaky(failures=99, name="bad")]))
    with pytest.raises(OperatorFailed, match="'bad' failed"):
        await p.arun("x")


async def test_skip_reason_is_reported_as_skipped():
    class OnlyLong(Operator):
        def skip_reason(self, msg: str) -> str | None:
            return "short input" if len(msg) < 3 else None

        def process(self, msg: str) -> str:
            return msg * 2

    p = Pipeline("skip")
    src = Identity(name="src")
    p.add_source(src)
    p.connect(src, ParallelGroup("g", [OnlyLong(), Upper()]))
    events, cb = _recorder()
    out = await p.arun("ab", on_event=cb)
    assert out.skipped == {"only_long": "short input"} and out.results == {"upper": "AB"}
    assert ("only_long", "skipped") in [(e.operator, e.status) for e in events]


async def test_stream_interleaves_items_events_and_final_result():
    p = Pipeline("s")
    t, ex = Tokens(), Exclaim()
    p.add_source(t)
    p.connect(t, ex)
    items = [x async for x in p.astream("a b", events=True)]
    kinds = [x if isinstance(x, str) else f"{x.operator}:{x.status}" for x in items]
    assert kinds == [
        "tokens:running",
        "a",
        "b",
        "tokens:completed",
        "exclaim:running",
        "exclaim:completed",
        "b!",
    ]


async def test_timings_and_current_request_are_available():
    seen = []

    class Peek(Operator):
        def process(self, msg: str) -> str:
            seen.append(current_request().session_id)
            return msg

    from studio_nb.kernel import RequestContext

    p = Pipeline("ctx")
    a, b = Peek(), Upper()
    p.add_source(a)
    p.connect(a, b)
    ctx = RequestContext(session_id="s1")
    assert await p.arun("x", context=ctx) == "X"
    assert seen == ["s1"] and set(ctx.timings) == {"peek", "upper"}


def test_sync_run_and_stream_work_from_plain_code():
    p = Pipeline("sync")
    t = Tokens()
    p.add_source(t)
    assert p.run("a b c") == "c"
    # the terminal streaming operator's last item is the result: streamed once, not twice
    assert list(p.stream("a b")) == ["a", "b"]


async def test_many_concurrent_requests_on_one_pipeline():
    p = Pipeline("many")
    a, b = Sleep(ms=1), Upper()
    p.add_source(a)
    p.connect(a, b)
    outs = await asyncio.gather(*(p.arun(f"r{i}") for i in range(200)))
    assert outs == [f"R{i}" for i in range(200)]
