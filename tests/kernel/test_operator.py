"""Operators on their own: direct calls, sockets, config capture, history."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from studio_nb.errors import WiringError
from studio_nb.kernel import Operator, Policy
from studio_nb.kernel.testing import Sleep, Tokens, Upper


class AsyncUpper(Operator):
    async def process(self, msg: str) -> str:
        return msg.upper()


class Configured(Operator):
    def __init__(self, factor: int = 2, label: str = "x") -> None:
        self.factor = factor

    def process(self, msg: int) -> int:
        return msg * self.factor


def test_sync_operator_called_directly():
    assert Upper()("hi") == "HI"


def test_async_operator_called_directly_outside_a_loop():
    assert AsyncUpper()("hi") == "HI"


@pytest.mark.anyio
async def test_direct_call_works_inside_a_running_loop():
    # Jupyter cells run inside an event loop; op(x) must still work there.
    assert AsyncUpper()("hi") == "HI"
    assert await AsyncUpper().acall("yo") == "YO"


def test_streaming_operator_call_returns_last_item_and_stream_yields_all():
    op = Tokens()
    assert op("a b c") == "c"
    assert list(op.stream("x y")) == ["x", "y"]


@pytest.mark.anyio
async def test_astream_yields_items():
    assert [w async for w in Tokens().astream("one two")] == ["one", "two"]


def test_sockets_come_from_type_hints():
    s = Upper.sockets
    assert (s.input_name, s.input_type, s.output_type, s.kind) == ("msg", str, str, "sync")
    assert Tokens.sockets.output_type is str and Tokens.sockets.streaming
    assert AsyncUpper.sockets.kind == "async"


def test_config_is_recorded_and_name_policy_are_reserved_kwargs():
    op = Configured(3, name="triple", policy=Policy(max_retries=2))
    assert op.config == {"factor": 3, "label": "x"}
    assert op.name == "triple" and op.policy.max_retries == 2
    assert op(5) == 15
    assert Configured().name == "configured"


def test_config_is_the_live_attributes():
    op = Configured(3)
    op.factor = 7
    assert op.config == {"factor": 7, "label": "x"}  # what a cell changed, not the init value
    op.label = "y"  # an argument the operator did not store itself is an attribute too
    assert op.config["label"] == "y" and "'factor': 7" in repr(op)


def test_repr_shows_sockets_config_and_last_run():
    op = Configured(4)
    op(1)
    text = repr(op)
    assert "in:  msg: int" in text and "out: int" in text
    assert "'factor': 4" in text and "last: ok" in text


def test_last_is_bounded_and_keeps_errors():
    op = Upper()
    for i in range(20):
        op(str(i))
    assert len(op.last) == Upper.history_size
    assert op.last[-1].input == "19" and op.last[-1].output == "19"
    with pytest.raises(AttributeError):
        op(42)  # int has no .upper()
    assert isinstance(op.last[-1].error, AttributeError)
    assert op.last[-1].duration_ms >= 0


def test_warm_up_runs_once_before_first_call():
    class Heavy(Operator):
        def __init__(self) -> None:
            self.loads = 0

        def warm_up(self) -> None:
            self.loads += 1

        def process(self, msg: str) -> str:
            return msg

    op = Heavy()
    op("a")
    op("b")
    assert op.loads == 1


def test_process_must_take_one_message():
    with pytest.raises(WiringError, match="exactly one message"):

        class Bad(Operator):
            def process(self, a: str, b: str) -> str:
                return a


def test_plain_generators_are_rejected_with_the_fix():
    with pytest.raises(WiringError, match="async generators"):

        class Bad(Operator):
            def process(self, msg: str):  # type: ignore[override]
                yield msg


def test_async_generator_output_type_is_the_item_type():
    class Chunks(Operator):
        async def process(self, msg: str) -> AsyncIterator[bytes]:
            yield msg.encode()

    assert Chunks.sockets.output_type is bytes
    assert Chunks()("x") == b"x"


def test_sleep_operator_records_in_log():
    op = Sleep(ms=1)
    assert op("z") == "z"
    assert [kind for kind, _ in op.log] == ["start", "end"]


class Note(str):
    """A progress note for the caller (a stream-only item type)."""


class Annotate(Operator):
    stream_types = (Note,)

    async def process(self, msg: str) -> AsyncIterator[Note | str]:
        yield Note(f"looking at {msg}")
        yield msg.upper()


def test_stream_types_go_to_the_caller_only_and_the_last_other_item_travels_on():
    from studio_nb.kernel import Pipeline

    class Exclaim(Operator):
        def process(self, msg: str) -> str:
            return msg + "!"

    a, ex = Annotate(), Exclaim()
    assert a.output_type is str  # the wiring sees only what travels on
    p = Pipeline("notes")
    p.add_source(a)
    p.connect(a, ex)
    items = list(p.stream("hi"))
    assert items == ["looking at hi", "HI!"] and isinstance(items[0], Note)


def test_bind_hands_resources_to_every_operator_and_need_explains_a_missing_one():
    from types import SimpleNamespace

    from studio_nb.kernel import Pipeline

    class UsesStore(Operator):
        def process(self, msg: str) -> str:
            return self.need("store")[msg]

    op = UsesStore()
    with pytest.raises(RuntimeError, match=r"needs resources.store.*op.bind"):
        op("k")
    p = Pipeline("res")
    p.add_source(op)
    closed = []
    p.use_resources(lambda: SimpleNamespace(store={"k": "v"}, close=lambda: closed.append(1)))
    assert p.run("k") == "v"
    late = UsesStore(name="late")  # operators added later are bound too
    p.add(late)
    assert late.resources is p.resources
    p.close()
    assert closed == [1]
