"""One user's long answer does not hold the model for the others (issue #21, finding 2).

The real model process with its default two copies of the bundled model: bob streams a
~256-token answer (the longest a server's default ``max_tokens`` allows); once his first
token is out, alice asks a short question. Her answer must be whole while bob's is still
streaming. With a single copy (the process before the fix; ``STUDIO_NB_MODEL_SLOTS=1``
here) her request waits until his is done — the second test shows the difference is the
copies and not luck. Order is observed with events; nothing is timed.
"""

from __future__ import annotations

import asyncio

import pytest

from studio_nb.kernel.context import RequestContext, _current
from studio_nb.services.inference import ManagedModelClient
from tests.inference.conftest import LONG, N_THREADS, QUESTION
from tests.inference.test_managed import raw_get

pytestmark = pytest.mark.slow


async def as_user(client, user, messages, max_tokens, first_token: asyncio.Event, log: list):
    _current.set(RequestContext(user=user))  # what the pipeline sets for each request (a task-local copy)
    n = 0
    async for delta in client.astream_chat(messages, max_tokens=max_tokens):
        if delta.text:
            n += 1
            first_token.set()
    log.append((user, n))


async def two_users(client):
    bob_first, alice_first = asyncio.Event(), asyncio.Event()
    log: list = []
    bob = asyncio.create_task(as_user(client, "bob", LONG, 256, bob_first, log))
    await asyncio.wait_for(bob_first.wait(), 120)
    alice = asyncio.create_task(as_user(client, "alice", QUESTION, 8, alice_first, log))
    await asyncio.wait_for(asyncio.gather(bob, alice), 300)
    return log


def start(tmp_path, monkeypatch, slots: int) -> ManagedModelClient:
    monkeypatch.setenv("STUDIO_NB_MODEL_SLOTS", str(slots))
    client = ManagedModelClient(n_threads=N_THREADS, n_ctx=2048, data_dir=str(tmp_path / f"data-{slots}"))
    client.warm_up()
    return client


def health(client) -> dict:
    return raw_get(client.process.socket_path, "/health", client.process.token()).json()


async def wait_loaded(client, slots: int) -> None:
    for _ in range(600):
        if health(client)["slots"] == slots:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the model process never loaded {slots} copies: {health(client)}")


def test_a_long_answer_of_one_user_does_not_delay_another(tmp_path, monkeypatch):
    client = start(tmp_path, monkeypatch, 2)
    try:
        asyncio.run(wait_loaded(client, 2))
        log = asyncio.run(two_users(client))
        assert [u for u, _ in log] == ["alice", "bob"], log  # hers ended while his streamed
        assert dict(log)["bob"] > 100 and dict(log)["alice"] >= 1
        state = health(client)  # both copies handed back
        assert state["slots_busy"] == 0 and state["waiting"] == 0
    finally:
        client.close()


def test_with_one_copy_the_second_user_waits(tmp_path, monkeypatch):
    client = start(tmp_path, monkeypatch, 1)
    try:
        log = asyncio.run(two_users(client))
        assert [u for u, _ in log] == ["bob", "alice"], log
    finally:
        client.close()
