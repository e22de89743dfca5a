"""The model process's hand-out of model copies (fair_slots.py), as a table of schedules.

The copies here are plain objects: what is tested is who gets one and when, which needs no
model. The real model process serving two users side by side is tested in
tests/jupyter/test_replay_limits.py. Order is established with events, never with sleeps.
"""

from __future__ import annotations

import threading

import pytest

from studio_nb.services.inference.fair_slots import FairSlots


class Copy:
    def __init__(self, name):
        self.name = name
        self.closed = False

    def close(self):
        self.closed = True


def hold(slots, user, entered, release, got):
    with slots.slot(user) as llm:
        got.append((user, llm.name))
        entered.set()
        release.wait(10)


def start(slots, user, got):
    entered, release = threading.Event(), threading.Event()
    t = threading.Thread(target=hold, args=(slots, user, entered, release, got), daemon=True)
    t.start()
    return t, entered, release


def test_one_user_never_holds_the_last_copy():
    slots = FairSlots(Copy("a"), lambda: Copy("b"), size=2)
    slots_loaded = threading.Event()
    for _ in range(200):
        if len(slots.loaded) == 2:
            slots_loaded.set()
            break
        threading.Event().wait(0.01)
    assert slots_loaded.is_set()
    got: list = []
    b1, b1_in, b1_go = start(slots, "bob", got)
    assert b1_in.wait(5)
    b2, b2_in, b2_go = start(slots, "bob", got)  # bob's second request waits: one copy is left for others
    assert not b2_in.wait(0.2)
    a1, a1_in, a1_go = start(slots, "alice", got)
    assert a1_in.wait(5), "alice waited for bob although a copy was free"
    assert slots.state()["slots_busy"] == 2 and slots.state()["waiting"] == 1
    a1_go.set()
    a1.join(5)
    assert not b2_in.wait(0.2)  # still bob's: he holds one already
    b1_go.set()
    assert b2_in.wait(5)
    b2_go.set()
    b2.join(5)
    assert [u for u, _ in got] == ["bob", "alice", "bob"]
    slots.close()
    assert all(c.closed for c in slots.loaded)


def _two_copies() -> FairSlots:
    slots = FairSlots(Copy("a"), lambda: Copy("b"), size=2)
    for _ in range(200):
        if len(slots.loaded) == 2:
            return slots
        threading.Event().wait(0.01)
    raise AssertionError("the second copy did not load")


def test_a_user_gets_back_the_copy_that_holds_their_last_prompt():
    """A copy's KV cache holds the last prompt it ran: a lone user's requests one after
    another stay on one copy (in rotation every other one evaluated its prompt afresh),
    and with two users each keeps their own."""
    slots = _two_copies()
    with slots.slot("bob") as first:
        pass
    for _ in range(4):
        with slots.slot("bob") as llm:
            assert llm is first
    got: list = []
    b, b_in, b_go = start(slots, "bob", got)
    assert b_in.wait(5)
    with slots.slot("alice") as theirs:  # bob holds his copy: alice gets the other
        assert theirs is not first
    b_go.set()
    b.join(5)
    with slots.slot("alice") as llm:
        assert llm is theirs
    with slots.slot("bob") as llm:
        assert llm is first


def test_a_single_copy_is_shared_in_arrival_order():
    slots = FairSlots(Copy("a"), size=1)
    got: list = []
    first, first_in, first_go = start(slots, "bob", got)
    assert first_in.wait(5)
    waiting = [start(slots, user, got) for user in ("alice", "carol")]
    first_go.set()
    for t, entered, go in waiting:
        assert entered.wait(5)
        go.set()
        t.join(5)
    assert [u for u, _ in got] == ["bob", "alice", "carol"]


def test_a_copy_that_cannot_load_leaves_the_first_serving():
    def broken():
        raise RuntimeError("out of memory")

    slots = FairSlots(Copy("a"), broken, size=3)
    for _ in range(200):
        if slots.load_error:
            break
        threading.Event().wait(0.01)
    assert slots.state()["slots"] == 1 and "out of memory" in slots.state()["slot_load_error"]
    with slots.slot(None) as llm:
        assert llm.name == "a"
    with pytest.raises(ValueError):
        FairSlots(Copy("a"), size=0)
