"""RayEngine on a simulated two-node cluster (two raylets): sessions spread over nodes,
pool workers on both, and the same answers as the local engine."""

from __future__ import annotations

import asyncio

import pytest

from studio_nb.kernel import LocalEngine, Pipeline
from tests.scale import scale_ops as ops

pytestmark = [pytest.mark.ray, pytest.mark.anyio]


async def test_sessions_spread_over_nodes_and_answers_match(ray_two_nodes, ray_engine_factory):
    engine = ray_engine_factory(pools={"llm": {"size": 2, "num_cpus": 0.25}, "retriever": {"num_cpus": 0.25}})
    p = Pipeline("spread", engine=engine)
    p.add_source(ops.SessionCounter(name="count"))
    p.connect("count", ops.PoolTokens(name="gen"))
    turns = [(s, f"{s}-turn{i} tail") for i in range(2) for s in ("s1", "s2")]
    outs = await asyncio.gather(*(p.arun(t, session_id=s) for s, t in turns))
    # the session counter's output, last word streamed back by the pool: tail|session|n|pid
    assert [o.split("|")[:3] for o in outs] == [["tail", "s1", "1"], ["tail", "s2", "1"], ["tail", "s1", "2"], ["tail", "s2", "2"]]

    actors = engine.actors()
    sessions = {actors[f"studio_nb/session/{s}"]["node_id"] for s in ("s1", "s2")}
    assert len(sessions) == 2, "two sessions should land on the two nodes (SPREAD)"
    engine.warm_up(p)
    workers = {a["node_id"] for n, a in engine.actors().items() if n.startswith("studio_nb/pool/llm/")}
    assert len(workers) == 2, "the two LLM workers should sit on different nodes"

    local = Pipeline("spread", engine=LocalEngine())
    local.add_source(ops.TaskUpper(name="up"))
    local.connect("up", ops.PoolTokens(name="gen"))
    remote = Pipeline("spread", engine=engine)
    remote.add_source(ops.TaskUpper(name="up"))
    remote.connect("up", ops.PoolTokens(name="gen"))
    text = "same answer on every engine"
    assert [x async for x in remote.astream(text)] == [x async for x in local.astream(text)]
