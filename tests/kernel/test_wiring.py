"""Wiring-time checks: type mismatches, graph validation, routing by type."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from studio_nb.errors import LoopLimitExceeded, WiringError
from studio_nb.kernel import Operator, ParallelGroup, Pipeline
from studio_nb.kernel.testing import Double, Exclaim, Identity, Length, Upper


def test_mismatch_error_lists_sockets_and_what_fits():
    p = Pipeline("w")
    up, dbl, ex = Upper(), Double(), Exclaim()
    p.add_source(up)
    p.add(ex)
    with pytest.raises(WiringError) as info:
        p.connect(up, dbl)
    msg = str(info.value)
    assert "upper outputs str but double takes int" in msg
    assert "Nodes that accept str: exclaim" in msg
    assert "double: in int (free), out int" in msg


def test_connect_with_compatible_types_and_any():
    p = Pipeline("w")
    length, ident, dbl = Length(), Identity(), Double()
    p.add_source(length)
    p.connect(length, ident)  # int -> Any
    p.connect(ident, dbl)  # Any -> int
    assert p.run("four") == 8


@pytest.mark.parametrize(
    "build, expected",
    [
        ("no_source", "no source"),
        ("unconnected", "input not connected"),
        ("cycle", "unbounded cycle"),
    ],
)
def test_validation_table(build, expected):
    p = Pipeline("v")
    a, b, c = Upper(), Exclaim(), Exclaim()
    if build != "no_source":
        p.add_source(a)
    p.connect(a, b)
    if build == "unconnected":
        p.add(c)
    if build == "cycle":
        p.connect(b, c)
        p.connect(c, b)  # a plain back edge: not allowed without a bound
    with pytest.raises(WiringError, match=expected):
        p.validate()


def test_run_validates_first():
    p = Pipeline("v")
    a = Upper()
    p.add_source(a)
    p.add(Exclaim())
    with pytest.raises(WiringError, match="exclaim: input not connected"):
        p.run("x")


def test_feedback_edge_needs_a_bound():
    p = Pipeline("f")
    a, b = Upper(), Exclaim()
    p.add_source(a)
    p.connect(a, b)
    with pytest.raises(WiringError, match="needs a loop bound"):
        p.connect(b, a, feedback=True)
    with pytest.raises(WiringError, match="only applies to feedback"):
        p.connect(b, a, max_loops=2)


def test_duplicate_explicit_names_are_refused_auto_names_are_numbered():
    p = Pipeline("n")
    a, b = Upper(), Upper()
    p.add_source(a)
    p.connect(a, b)
    assert b.name == "upper_2"
    with pytest.raises(WiringError, match="already has a node named"):
        p.add(Upper(name="upper"))


def test_group_members_cannot_be_wired_directly():
    p = Pipeline("g")
    src, x, y = Upper(), Exclaim(), Exclaim(name="e2")
    g = ParallelGroup("both", [x, y])
    p.add_source(src)
    p.connect(src, g)
    with pytest.raises(WiringError, match="connect the group"):
        p.connect(x, Upper(name="after"))


def test_group_branches_must_share_an_input_type():
    with pytest.raises(WiringError, match="every branch receives the same input"):
        ParallelGroup("bad", [Upper(), Double()])


# ---------------------------------------------------------------- routing by type


@dataclass
class Answer:
    text: str
    attempt: int


@dataclass
class Retry:
    attempt: int


class Draft(Operator):
    """Produces an answer; the attempt number comes back through the feedback edge."""

    def process(self, msg: str | Retry) -> Answer:
        attempt = msg.attempt + 1 if isinstance(msg, Retry) else 0
        return Answer(f"draft{attempt}", attempt)


class Check(Operator):
    def __init__(self, accept_at: int = 2) -> None:
        self.accept_at = accept_at

    def process(self, msg: Answer) -> Answer | Retry:
        return msg if msg.attempt >= self.accept_at else Retry(msg.attempt)


class Final(Operator):
    def process(self, msg: Answer) -> str:
        return msg.text


def _loop_pipeline(accept_at: int, max_loops: int) -> Pipeline:
    p = Pipeline("loop")
    d, c, f = Draft(), Check(accept_at), Final()
    p.add_source(d)
    p.connect(d, c)
    p.connect(c, f)
    p.connect(c, d, feedback=True, max_loops=max_loops)
    return p


def test_union_outputs_route_by_type_through_a_bounded_feedback_edge():
    assert _loop_pipeline(accept_at=2, max_loops=3).run("q") == "draft2"


def test_loop_bound_is_enforced():
    with pytest.raises(LoopLimitExceeded, match="max_loops=1"):
        _loop_pipeline(accept_at=5, max_loops=1).run("q")


def test_every_union_member_needs_a_taker():
    p = Pipeline("u")
    d, c, f = Draft(), Check(), Final()
    p.add_source(d)
    p.connect(d, c)
    p.connect(c, f)  # Retry has nowhere to go
    with pytest.raises(WiringError, match="check can output Retry but none of its edges accepts it"):
        p.validate()


def test_fan_out_runs_every_accepting_branch_and_returns_a_dict():
    p = Pipeline("fan")
    src, a, b = Upper(), Exclaim(), Length()
    p.add_source(src)
    p.connect(src, a)
    p.connect(src, b)
    assert p.run("hey") == {"exclaim": "HEY!", "length": 3}
