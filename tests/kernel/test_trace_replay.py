"""Traces, replay and breakpoints in the kernel, with tiny pure-Python operators.

Every topology the Studio graph uses is here: a chain, a ParallelGroup with a join, a
type-routed edge, and a bounded feedback edge. Counting operators prove what ran and
what was reused; events (not sleeps) order the concurrent cases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import anyio
import pytest

from studio_nb.kernel import Branches, ParallelGroup, Pipeline, RequestContext, codec
from studio_nb.kernel.errors import WiringError
from studio_nb.kernel.operator import Operator
from studio_nb.kernel.testing import Collect, Flaky, Upper
from studio_nb.kernel.trace import Trace


@dataclass(frozen=True)
class Draft:
    text: str
    tries: int = 0


@dataclass(frozen=True)
class Redo:
    draft: Draft
    reason: str


@dataclass(frozen=True)
class Final:
    text: str
    parts: tuple[str, ...] = ()


codec.register(Draft, Redo, Final)


class Count(Operator):
    """Appends ``tag`` to a string and counts its calls."""

    def __init__(self, tag: str = "x") -> None:
        self.tag = tag
        self.calls = 0

    def process(self, msg: str) -> str:
        self.calls += 1
        return f"{msg}+{self.tag}"


class Write(Operator):
    def __init__(self, style: str = "plain") -> None:
        self.style = style
        self.calls = 0

    def process(self, msg: str | Redo) -> Draft:
        self.calls += 1
        if isinstance(msg, Redo):
            return Draft(msg.draft.text + "!", msg.draft.tries + 1)
        return Draft(f"{self.style}:{msg}")


class Check(Operator):
    """Sends a first draft back once (feedback), then accepts it."""

    def __init__(self, redo: bool = True) -> None:
        self.redo = redo
        self.calls = 0

    def process(self, msg: Draft) -> Final | Redo:
        self.calls += 1
        if self.redo and msg.tries == 0:
            return Redo(msg, "too short")
        return Final(msg.text, (msg.text,))


class Shortcut(Operator):
    """Type routing: a message with a question mark answers at once, anything else is written."""

    def __init__(self, mark: str = "?") -> None:
        self.mark = mark

    def process(self, msg: str) -> str | Final:
        return Final(f"direct:{msg}") if self.mark in msg else msg


class Finish(Operator):
    def process(self, msg: Final) -> Final:
        return msg


def feedback_pipeline(**ops):
    p = Pipeline("fb")
    p.add_source(ops["up"])
    p.connect(ops["up"], ops["short"])
    p.connect(ops["short"], ops["write"])
    p.connect(ops["short"], ops["finish"])
    p.connect(ops["write"], ops["check"])
    p.connect(ops["check"], ops["finish"])
    p.connect(ops["check"], ops["write"], feedback=True, max_loops=2)
    return p


@pytest.fixture
def fb():
    ops = dict(up=Count(tag="u", name="up"), short=Shortcut(name="short"), write=Write(name="write"),
               check=Check(name="check"), finish=Finish(name="finish"))
    return feedback_pipeline(**ops), ops


def group_pipeline():
    a, b, c = Count(tag="a", name="a"), Count(tag="b", name="b"), Count(tag="c", name="c")
    after = Count(tag="z", name="after")
    p = Pipeline("grp")
    src = Upper(name="src")
    p.add_source(src)
    p.connect(src, ParallelGroup("ctx", [a, b, c], join=Collect(name="join")))
    p.connect("ctx", after)
    return p, dict(a=a, b=b, c=c, after=after)


def run(p, value, **kw):
    ctx = RequestContext(**kw)
    out = p.run(value, context=ctx)
    return out, ctx.trace


# ---------------------------------------------------------------- the trace
def test_every_run_is_recorded_with_input_output_status_and_visit(fb):
    p, ops = fb
    out, trace = run(p, "hi")
    assert out == Final("plain:hi+u!", ("plain:hi+u!",))
    assert [(r.operator, r.visit, r.status) for r in trace] == [
        ("up", 0, "completed"), ("short", 0, "completed"), ("write", 0, "completed"), ("check", 0, "completed"),
        ("write", 1, "completed"), ("check", 1, "completed"), ("finish", 0, "completed"),
    ]
    assert trace.runs("write")[1].input == Redo(Draft("plain:hi+u"), "too short")
    assert trace.last("check").output == out and not any(r.reused for r in trace)
    assert all(r.duration_ms >= 0 and r.attempt == 0 for r in trace)
    starts = [r.started_ms for r in trace]
    assert starts == sorted(starts)


def test_retries_skips_groups_and_optional_failures_are_recorded():
    p = Pipeline("g")
    flaky = Flaky(failures=1, name="flaky").with_policy(max_retries=1, backoff_ms=0)
    bad = Flaky(failures=5, name="bad").with_policy(optional=True)
    p.add_source(flaky)
    p.connect(flaky, ParallelGroup("ctx", [Count(tag="a", name="a"), bad, Count(tag="c", name="c")],
                                   join=Collect(name="join")))
    out, trace = run(p, "x", disabled=frozenset({"c"}))
    assert out == "a=x+a"
    rows = [(r.operator, r.kind, r.attempt, r.status) for r in trace]
    assert rows[:2] == [("flaky", "operator", 0, "retry"), ("flaky", "operator", 1, "completed")]
    assert ("ctx", "group", 0, "completed") in rows and ("join", "join", 0, "completed") in rows
    assert ("bad", "branch", 0, "failed") in rows and ("c", "branch", 0, "skipped") in rows
    assert trace.last("c").note == "disabled" and "flaky failure" in trace.last("bad").error
    join = trace.last("join")
    assert isinstance(join.input, Branches) and join.input.errors and join.input.skipped == {"c": "disabled"}
    assert trace.last("ctx").output == "a=x+a" and trace.last("ctx").duration_ms >= trace.last("join").duration_ms


def test_trace_json_is_compact_and_decodes_faithfully(fb):
    p, _ = fb
    _, trace = run(p, "hi")
    data = json.loads(json.dumps(trace.to_json()))
    assert data["complete"] is True
    text = json.dumps(data)
    assert text.count('"plain:hi+u"') == 1  # the first draft is written once, then referenced
    back = Trace.from_json(data)
    assert [(r.operator, r.visit, r.input, r.output) for r in back] == [
        (r.operator, r.visit, r.input, r.output) for r in trace]
    assert isinstance(back.last("finish").output.parts, tuple)  # tuples come back as tuples
    trace.compact()
    assert trace.compacted and trace.last("write").output == Draft("plain:hi+u!", 1)


def test_unregistered_types_stay_data_when_decoded():
    @dataclass(frozen=True)
    class Secret:
        x: int

    data = codec.encode({"a": Secret(1)})
    assert data["a"]["__type__"].endswith("Secret")
    assert codec.decode(data) == {"a": {"__type__": data["a"]["__type__"], "x": 1}}


# ---------------------------------------------------------------- replay
def test_replay_from_a_node_reuses_everything_upstream(fb):
    p, ops = fb
    _, trace = run(p, "hi")
    calls = {k: getattr(op, "calls", None) for k, op in ops.items()}
    ctx = RequestContext()
    out = p.replay(trace, from_="write", overrides={"write": p.override("write", params={"style": "bold"})},
                   context=ctx)
    assert out == Final("bold:hi+u!", ("bold:hi+u!",))
    assert ops["up"].calls == calls["up"] and ops["write"].calls == calls["write"]  # shared ops untouched
    assert ops["check"].calls == calls["check"] + 2
    assert [(r.operator, r.reused) for r in ctx.trace] == [
        ("up", True), ("short", True), ("write", False), ("check", False), ("write", False), ("check", False),
        ("finish", False)]
    assert p["write"].style == "plain"  # the pipeline itself did not change
    assert p.run("hi") == Final("plain:hi+u!", ("plain:hi+u!",))


def test_replay_follows_the_type_routed_edge_a_rerun_node_now_takes(fb):
    p, ops = fb
    _, trace = run(p, "hi")
    ctx = RequestContext()
    out = p.replay(trace, overrides={"short": p.override("short", params={"mark": "u"})}, context=ctx)
    assert out == Final("direct:hi+u")  # the shortcut answered; write/check did not run
    assert [(r.operator, r.reused) for r in ctx.trace] == [("up", True), ("short", False), ("finish", False)]
    _, direct = run(p, "why?")
    ctx = RequestContext()
    out = p.replay(direct, overrides={"short": p.override("short", params={"mark": "!"})}, context=ctx)
    assert out == Final("plain:why?+u!", ("plain:why?+u!",)) and ctx.trace.operators[-1] == "finish"


def test_replay_after_the_feedback_loop_reuses_both_visits(fb):
    p, ops = fb
    _, trace = run(p, "hi")
    before = ops["write"].calls
    ctx = RequestContext()
    out = p.replay(trace, from_="finish", context=ctx)
    assert out == Final("plain:hi+u!", ("plain:hi+u!",)) and ops["write"].calls == before
    assert [(r.operator, r.visit, r.reused) for r in ctx.trace] == [
        ("up", 0, True), ("short", 0, True), ("write", 0, True), ("check", 0, True), ("write", 1, True),
        ("check", 1, True), ("finish", 0, False)]
    ctx = RequestContext()  # from the second visit of check: the first loop is reused
    p.replay(trace, from_=("check", 1), context=ctx)
    assert [r.reused for r in ctx.trace.runs("check")] == [True, False]


def test_replay_from_a_branch_reuses_the_other_branches_and_reruns_the_join():
    p, ops = group_pipeline()
    out, trace = run(p, "q")
    assert out == "a=Q+a,b=Q+b,c=Q+c+z"
    counts = {k: op.calls for k, op in ops.items()}
    ctx = RequestContext()
    out = p.replay(trace, overrides={"b": p.override("b", params={"tag": "B"})}, context=ctx)
    assert out == "a=Q+a,b=Q+B,c=Q+c+z"
    assert ops["a"].calls == counts["a"] and ops["c"].calls == counts["c"] and ops["b"].calls == counts["b"]
    assert ops["after"].calls == counts["after"] + 1
    reused = {r.operator: r.reused for r in ctx.trace}
    assert reused == {"src": True, "ctx": False, "a": True, "b": False, "c": True, "join": False, "after": False}
    ctx = RequestContext()  # from after the group: the whole group is reused
    p.replay(trace, from_="after", context=ctx)
    assert {r.operator for r in ctx.trace if r.reused} == {"src", "ctx", "a", "b", "c", "join"}


def test_replay_from_a_decoded_trace_works_like_the_live_one(fb):
    p, _ = fb
    _, trace = run(p, "hi")
    decoded = Trace.from_json(json.loads(json.dumps(trace.to_json())))
    assert p.replay(decoded, from_="check") == p.replay(trace, from_="check")


def test_replay_errors_name_the_fix(fb):
    p, _ = fb
    _, trace = run(p, "why?")  # the shortcut answered: write and check never ran
    with pytest.raises(WiringError, match=r"no such operator; operators: check, finish, short, up, write"):
        p.replay(trace, from_="nope")
    with pytest.raises(WiringError, match=r"did not run in this request; operators that ran: up, short, finish"):
        p.replay(trace, from_="write")
    with pytest.raises(WiringError, match="nothing to replay"):
        p.replay(trace)
    with pytest.raises(WiringError, match="cannot stand in for 'write'"):
        p.override("write", operator=Upper())
    with pytest.raises(Exception, match="it takes: style"):
        p.override("write", params={"colour": "red"})


def test_a_replay_and_a_normal_request_at_once_each_use_their_own_operator(fb):
    p, _ = fb
    _, trace = run(p, "hi")

    async def both():
        results = {}

        async def normal():
            results["normal"] = await p.arun("hi")

        async def replay():
            results["replay"] = await p.areplay(trace, overrides={"write": p.override("write", params={"style": "B"})})

        async with anyio.create_task_group() as tg:
            tg.start_soon(replay)
            tg.start_soon(normal)
        return results

    from studio_nb.kernel.sync import run_sync

    results = run_sync(both)
    assert results == {"normal": Final("plain:hi+u!", ("plain:hi+u!",)), "replay": Final("B:hi+u!", ("B:hi+u!",))}


# ---------------------------------------------------------------- breakpoints
class Slot(Operator):
    """One request at a time (concurrency=1 is set on it): stands for the model's slot."""

    def process(self, msg: str) -> str:
        return msg + ">slot"


def test_a_paused_request_holds_no_slot_and_resumes_with_an_edited_message():
    slot = Slot(name="slot").with_policy(concurrency=1, queue_capacity=4)
    p = Pipeline("bp")
    up = Upper(name="up")
    p.add_source(up)
    p.connect(up, slot)

    async def scenario():
        paused, go = anyio.Event(), anyio.Event()
        seen = {}

        async def on_pause(node, visit, msg):
            seen["at"], seen["msg"] = (node, visit), msg
            paused.set()
            await go.wait()
            return msg + " (edited)"

        a = RequestContext(breakpoints=frozenset({"slot"}), on_pause=on_pause, session_id="a")
        out = {}

        async def first():
            out["a"] = await p.arun("a", context=a)

        async with anyio.create_task_group() as tg:
            tg.start_soon(first)
            await paused.wait()
            out["b"] = await p.arun("b", session_id="b")  # passes the slot while "a" waits before it
            assert "a" not in out
            go.set()
        return out, seen, a

    from studio_nb.kernel.sync import run_sync

    out, seen, a = run_sync(scenario)
    assert out == {"a": "A (edited)>slot", "b": "B>slot"}
    assert seen == {"at": ("slot", 0), "msg": "A"}
    rec = a.trace.last("slot")
    assert rec.input == "A (edited)" and rec.paused_ms > 0 and not rec.reused


def test_resuming_at_the_breakpoint_does_not_stop_there_again(fb):
    p, _ = fb
    _, trace = run(p, "hi")
    stops = []

    async def on_pause(node, visit, msg):
        stops.append((node, visit))
        return msg

    partial = Trace([r for r in trace if r.operator in ("up", "short")])  # paused before "write"
    ctx = RequestContext(breakpoints=frozenset({"write", "check"}), on_pause=on_pause)
    out = p.replay(partial, inputs={("write", 0): "edited"}, context=ctx)
    assert out == Final("plain:edited!", ("plain:edited!",))
    assert stops == [("check", 0), ("write", 1), ("check", 1)]  # not ("write", 0): it resumed there


def test_a_per_user_cap_lets_another_user_past_a_user_at_the_cap():
    import anyio

    from studio_nb.kernel.scheduling import PriorityLimiter

    async def scenario():
        lim = PriorityLimiter(2, per_user=1)
        order: list[str] = []
        await lim.acquire(0, "bob")  # bob holds one of two slots

        async def take(user, tag):
            await lim.acquire(0, user)
            order.append(tag)

        async with anyio.create_task_group() as tg:
            tg.start_soon(take, "bob", "bob-2")  # waits: bob is at his cap though a slot is free
            await anyio.wait_all_tasks_blocked()
            tg.start_soon(take, "alice", "alice-1")  # goes at once: the free slot is not bob's to take
            await anyio.wait_all_tasks_blocked()
            assert order == ["alice-1"] and lim.waiting == 1
            lim.release("alice")  # a slot frees, but bob still holds his first: he waits
            await anyio.wait_all_tasks_blocked()
            assert order == ["alice-1"] and lim.active == 1
            lim.release("bob")
        assert order == ["alice-1", "bob-2"]
        lim.release("bob")
        assert lim.active == 0 and not lim._held

    anyio.run(scenario)
