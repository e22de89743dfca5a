"""ToolRegistry: argument validation, failures as data, timeouts, bounded pools."""

from __future__ import annotations

import os
import threading

import anyio
import pytest

from studio_nb.errors import PathEscapeError, ToolError
from studio_nb.services.tools import ToolRegistry, ToolSpec
from studio_nb.services.tools.calculator import calculate

pytestmark = pytest.mark.anyio

ONE_INT = {"type": "object", "properties": {"i": {"type": "integer"}}, "required": ["i"],
           "additionalProperties": False}


def _peak(events: list[tuple[str, int]]) -> int:
    running = peak = 0
    for kind, _ in events:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    return peak


async def test_cpu_pool_never_runs_more_than_its_limit():
    reg = ToolRegistry(io_workers=8, cpu_workers=2)
    events: list[tuple[str, int]] = []
    lock = threading.Lock()
    pair = threading.Barrier(2, timeout=20)  # passes only when 2 run at once: the limit is reached

    def work(i: int) -> int:
        with lock:
            events.append(("start", i))
        pair.wait()
        with lock:
            events.append(("end", i))
        return i

    reg.register(ToolSpec("work", "records start/end", ONE_INT, pool="cpu", timeout_s=30), work)
    results = {}

    async def one(i: int) -> None:
        results[i] = await reg.call("work", {"i": i})

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(one, i)
    assert all(c.ok and c.result == i for i, c in results.items()), results
    assert len(events) == 20
    assert _peak(events) == 2  # from the recorded order: never 3 running at once
    reg.close()


async def test_io_pool_is_not_blocked_by_a_busy_cpu_pool():
    reg = ToolRegistry(io_workers=2, cpu_workers=2)
    release, started = threading.Event(), []

    def block(i: int) -> int:
        started.append(i)
        release.wait(30)
        return i

    reg.register(ToolSpec("block", "waits", ONE_INT, pool="cpu", timeout_s=60), block)
    reg.register(ToolSpec("quick", "returns", ONE_INT, pool="io"), lambda i: i * 10)
    cpu_pool = reg.pools["cpu"]
    async with anyio.create_task_group() as tg:
        for i in range(3):
            tg.start_soon(reg.call, "block", {"i": i})
        while len(started) < 2 or cpu_pool.waiting < 1:
            await anyio.sleep(0.01)
        quick = await reg.call("quick", {"i": 4})
        assert quick.ok and quick.result == 40
        assert not release.is_set() and len(started) == 2  # the CPU pool was full all along
        release.set()
    assert sorted(started) == [0, 1, 2]
    reg.close()


async def test_timeout_is_reported_not_raised():
    reg = ToolRegistry()
    release = threading.Event()
    reg.register(ToolSpec("hang", "never ends in time", {"type": "object"}, pool="io", timeout_s=0.2),
                 lambda: release.wait(30))

    async def ahang() -> None:
        await anyio.sleep(30)

    reg.register(ToolSpec("ahang", "async, too slow", {"type": "object"}, timeout_s=0.2), ahang)
    for name in ("hang", "ahang"):
        call = await reg.call(name, {})
        assert call.error == f"tool {name!r} timed out after 0.2 s" and call.error_code == "timeout"
        assert call.result is None and call.duration_ms >= 200
    release.set()
    reg.close()


async def test_argument_validation_lists_every_problem():
    reg = ToolRegistry()
    reg.register(ToolSpec("calc", "calculator", {
        "type": "object", "properties": {"expression": {"type": "string", "maxLength": 10},
                                         "digits": {"type": "integer", "minimum": 0}},
        "required": ["expression"], "additionalProperties": False}, pool="cpu"), calculate)
    bad = await reg.call("calc", {"expression": 12, "digits": -1, "extra": True})
    assert bad.error_code == "tool_error" and bad.result is None
    assert bad.error.startswith("tool 'calc' got bad arguments: ")
    for part in ("'extra' was unexpected", "digits: -1 is less than the minimum of 0",
                 "expression: 12 is not of type 'string'"):
        assert part in bad.error
    missing = await reg.call("calc", {})
    assert "'expression' is a required property" in missing.error
    not_dict = await reg.call("calc", ["17*23"])
    assert "must be a JSON object" in not_dict.error
    ok = await reg.call("calc", {"expression": "17*23"})
    assert ok.ok and ok.result == 391 and ok.to_dict()["result"] == 391


async def test_unknown_tool_raises_but_tool_failures_do_not():
    reg = ToolRegistry()

    def boom() -> None:
        raise ValueError("kaput")

    def escape() -> None:
        raise PathEscapeError("path '../x' is outside the workspace")

    reg.register(ToolSpec("boom", "fails", {"type": "object"}), boom)
    reg.register(ToolSpec("escape", "refuses", {"type": "object"}), escape)
    with pytest.raises(ToolError, match="unknown tool 'nope'; known tools: boom, escape") as err:
        await reg.call("nope", {})
    assert err.value.code == "tool_error"
    failed = await reg.call("boom")
    assert failed.error == "tool 'boom' failed: ValueError: kaput" and failed.error_code == "tool_error"
    refused = await reg.call("escape")
    assert refused.error_code == "path_escape" and "outside the workspace" in refused.error


async def test_decorator_infers_schema_from_signature():
    reg = ToolRegistry()

    @reg.tool(pool="cpu", timeout_s=1.0)
    def add(a: int, b: int = 2, label: str = "sum") -> dict:
        """Add two integers.

        Longer explanation that is not the description."""
        return {label: a + b}

    spec = reg.spec("add")
    assert (spec.description, spec.pool, spec.timeout_s) == ("Add two integers.", "cpu", 1.0)
    assert spec.parameters["required"] == ["a"]
    assert spec.parameters["properties"]["b"] == {"type": "integer", "default": 2}
    assert (await reg.call("add", {"a": 1})).result == {"sum": 3}
    assert "is not of type 'integer'" in (await reg.call("add", {"a": "1"})).error
    assert [s.name for s in reg.specs()] == ["add"] and "add" in reg


def test_registration_errors():
    reg = ToolRegistry()
    reg.register(ToolSpec("t", "x", {"type": "object"}), lambda: 1)
    with pytest.raises(ToolError, match="already registered"):
        reg.register(ToolSpec("t", "x", {"type": "object"}), lambda: 1)
    with pytest.raises(ToolError, match="pool must be 'io' or 'cpu'"):
        reg.register(ToolSpec("u", "x", {"type": "object"}, pool="gpu"), lambda: 1)  # type: ignore[arg-type]
    with pytest.raises(ToolError, match="invalid parameters schema"):
        reg.register(ToolSpec("v", "x", {"type": "nope"}), lambda: 1)
    with pytest.raises(ToolError, match="must be an identifier"):
        reg.register(ToolSpec("bad name", "x"), lambda: 1)
    assert reg.call_sync("t", {}).result == 1


async def test_process_backend_runs_picklable_cpu_tools_in_another_process():
    reg = ToolRegistry(cpu_workers=1, cpu_backend="process")
    reg.register(ToolSpec("pid", "worker pid", {"type": "object"}, pool="cpu", timeout_s=60), os.getpid)
    reg.register(ToolSpec("local_pid", "closure pid", {"type": "object"}, pool="cpu", timeout_s=60),
                 lambda: os.getpid())  # not picklable: runs in the thread pool instead
    reg.register(ToolSpec("calc", "calculator", {"type": "object"}, pool="cpu", timeout_s=60), calculate)
    remote = await reg.call("pid")
    assert remote.ok and remote.result != os.getpid()
    assert (await reg.call("local_pid")).result == os.getpid()
    refused = await reg.call("calc", {"expression": "9**9**9"})  # a ToolError crosses the process boundary
    assert refused.error_code == "tool_error" and "too large" in refused.error
    reg.close()


def test_the_schema_checker_refuses_what_it_cannot_enforce():
    """Tool schemas are checked by a small subset of JSON Schema (no 1.8 s jsonschema import):
    a keyword it does not know must fail at registration, never be silently ignored."""
    from studio_nb.services.tools.schema import problems

    reg = ToolRegistry()
    with pytest.raises(ToolError, match=r"unsupported keyword\(s\) \['pattern'\]"):
        reg.register(ToolSpec("p", "x", {"type": "object", "properties": {"s": {"type": "string", "pattern": "a+"}}}),
                     lambda s: s)
    schema = {"type": "object", "properties": {"k": {"type": ["integer", "null"], "maximum": 3},
                                               "tags": {"type": "array", "items": {"type": "string"}}}}
    assert problems(schema, {"k": None, "tags": ["a"]}) == []
    assert problems(schema, {"k": 9, "tags": ["a", 2]}) == [
        ("k", "9 is greater than the maximum of 3"), ("tags/1", "2 is not of type 'string'")]
