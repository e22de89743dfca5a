"""The Studio page's inspector and editor over a real server: a session's last trace (REST),
its variants (REST), and replaying its last turn from an operator (the socket)."""

from __future__ import annotations

import json

import pytest

from tests.jupyter.identity import TwoUsers, token
from tests.jupyter.test_isolation import api, ask

pytestmark = pytest.mark.slow
QUESTION = "What is a ParallelGroup in studio-nb?"


async def test_trace_variants_and_a_replay_side_by_side(jp_fetch, studio_ws, jp_auth_header):
    LOCAL = jp_auth_header  # noqa: N806  (the server's one user)
    sid = "insp-1"
    with_trace = await api(jp_fetch, "sessions", "insp-none", "trace", headers=LOCAL, expect=404)
    assert with_trace["code"] == "unknown_session"  # no turn yet: nothing to inspect
    first = (await ask(studio_ws, LOCAL, QUESTION, sid, "q1"))[-1]
    view = await api(jp_fetch, "sessions", sid, "trace", headers=LOCAL)
    assert view["request_id"] == "q1" and view["question"] == QUESTION and view["replay_of"] is None
    records = {r["operator"]: r for r in view["trace"]["records"]}
    llm = records["llm_inference"]
    parts = {p["label"]: p["text"] for p in llm["output"]["parts"]}
    generated = parts["generated text (before the grounding check)"]
    assert generated.strip() and llm["status"] == "completed" and llm["duration_ms"] > 0
    assert first["synthesis"] in generated or first["synthesis"] == ""  # the check only ever drops sentences
    prompt = {p["label"]: p["text"] for p in records["prompt_builder"]["output"]["parts"]}["prompt"]
    assert prompt.endswith(f"Question: {QUESTION}") and "Evidence:" in prompt
    assert records["evidence"]["output"]["type"] == "ContextEnrichedMessage"
    assert records["tool_executor"]["status"] == "skipped" and records["tool_executor"]["note"] == "no tool applies"
    assert llm["input"]["json"]["__type__"] == "LLMRequest"

    # the session switches to extractive answers (its own variant), then replays the turn from the evidence
    variants = await api(jp_fetch, "pipeline", "variants", headers=LOCAL, params={"session_id": sid})
    answer_mode = next(s for s in variants["settings"] if s["name"] == "answer_mode")
    assert answer_mode["value"] == "grounded" and answer_mode["options"] == ["grounded", "extractive", "generative"]
    changed = await api(jp_fetch, "pipeline", "variants", headers=LOCAL, method="PUT",
                        body=json.dumps({"session_id": sid, "setting": "answer_mode", "value": "extractive"}))
    assert next(s for s in changed["settings"] if s["name"] == "answer_mode")["value"] == "extractive"
    bad = await api(jp_fetch, "pipeline", "variants", headers=LOCAL, method="PUT", expect=400,
                    body=json.dumps({"session_id": sid, "setting": "answer_mode", "value": "poetic"}))
    assert bad["code"] == "bad_config" and "grounded, extractive, generative" in bad["message"]
    other = await api(jp_fetch, "pipeline", "variants", headers=LOCAL, params={"session_id": "insp-other"})
    assert next(s for s in other["settings"] if s["name"] == "answer_mode")["value"] == "grounded"

    ws = await studio_ws(headers=dict(LOCAL))
    await ws.send({"type": "replay", "session_id": sid, "request_id": "rp1", "from": "evidence"})
    frames = await ws.until_done("rp1")
    done = frames[-1]
    assert done["type"] == "done" and done["replay_of"] == "q1" and done["mode"] == "extractive"
    steps = {(f["operator"], f["status"]) for f in frames if f["type"] == "step"}
    assert ("intent_router", "reused") in steps and ("evidence", "completed") in steps
    assert not any(op == "llm_inference" for op, _ in steps)  # extractive: the model is not asked
    assert [f["type"] for f in frames].index("evidence") < len(frames) - 1
    diff = done["diff"]
    assert diff["a"] == "q1" and diff["b"] == "rp1" and diff["evidence"]["same"] and not diff["answer"]["same"]
    assert diff["answer"]["a"] == first["text"] and diff["answer"]["b"] == done["text"]
    assert {t["operator"] for t in diff["timings"] if t["b_reused"]} >= {"user_input", "intent_router", "context"}
    history = await api(jp_fetch, "sessions", sid, headers=LOCAL)
    assert [t["request_id"] for t in history["turns"]] == ["q1"]  # the replay is not a second turn
    view = await api(jp_fetch, "sessions", sid, "trace", headers=LOCAL)  # the inspector now shows the replay
    assert view["request_id"] == "rp1" and view["replay_of"] == "q1"
    assert {r["operator"]: r["reused"] for r in view["trace"]["records"]}["intent_router"] is True
    older = await api(jp_fetch, "sessions", sid, "trace", headers=LOCAL, params={"request_id": "q1"})
    assert older["request_id"] == "q1"

    await ws.send({"type": "replay", "session_id": sid, "request_id": "rp2", "from": "nope"})
    error = (await ws.until_done("rp2"))[-1]
    assert error["type"] == "error" and error["code"] == "bad_wiring" and "operators: context" in error["message"]


@pytest.mark.parametrize("server_extra", [{"identity_provider_class": TwoUsers}])
async def test_another_users_session_cannot_be_inspected_replayed_or_switched(server_extra, jp_fetch, studio_ws):
    alice, bob = token("alice"), token("bob")
    await ask(studio_ws, alice, QUESTION, "alice-insp", "a1")
    assert (await api(jp_fetch, "sessions", "alice-insp", "trace", headers=alice))["request_id"] == "a1"
    seen = [(await api(jp_fetch, "sessions", s, "trace", headers=bob, expect=404))["code"]
            for s in ("alice-insp", "nobody-insp")]
    assert seen == ["unknown_session", "unknown_session"]
    ws = await studio_ws(headers=dict(bob))
    await ws.send({"type": "replay", "session_id": "alice-insp", "request_id": "b1", "from": "evidence"})
    assert (await ws.until_done("b1"))[-1]["code"] == "unknown_session"
    # a variant on that id switches bob's own "alice-insp" (ids are per user), never hers
    await api(jp_fetch, "pipeline", "variants", headers=bob, method="PUT",
              body=json.dumps({"session_id": "alice-insp", "setting": "answer_mode", "value": "extractive"}))
    hers = await api(jp_fetch, "pipeline", "variants", headers=alice, params={"session_id": "alice-insp"})
    assert next(s for s in hers["settings"] if s["name"] == "answer_mode")["value"] == "grounded"
    assert len((await api(jp_fetch, "sessions", "alice-insp", headers=alice))["turns"]) == 1
