"""The REST API under studio/api/ against a real server and the real pipeline."""

from __future__ import annotations

import json
import uuid

import pytest
from tornado.httpclient import HTTPClientError

from tests.jupyter.conftest import multipart

pytestmark = pytest.mark.slow


async def get_json(jp_fetch, *parts, **kw):
    r = await jp_fetch("studio", "api", *parts, **kw)
    return json.loads(r.body)


async def test_graph_lists_operators_with_layout_and_live_stats(jp_fetch, studio_ws):
    g = await get_json(jp_fetch, "pipeline")
    names = {n["name"] for n in g["nodes"]}
    assert {"intent_router", "knowledge_rag", "evidence", "llm_inference", "grounding"} <= names
    assert all(set(n["box"]) == {"x", "y", "w", "h"} for n in g["nodes"])
    assert any(e["feedback"] for e in g["edges"])
    c = await studio_ws()
    await c.send({"message": "What is SAGE?", "session_id": "rest-graph", "request_id": "g1"})
    await c.until_done("g1")
    g = await get_json(jp_fetch, "pipeline")
    llm = next(n for n in g["nodes"] if n["name"] == "llm_inference")
    assert llm["stats"]["runs"] >= 1 and llm["stats"]["mean_ms"] > 0
    assert g["runtime"]["status"] == "ready"


async def test_branch_toggle_is_live(jp_fetch, studio_ws):
    body = json.dumps({"enabled": False})
    r = await get_json(jp_fetch, "pipeline", "nodes", "knowledge_rag", method="PUT", body=body)
    assert r == {"name": "knowledge_rag", "enabled": False}
    g = await get_json(jp_fetch, "pipeline")
    assert next(n for n in g["nodes"] if n["name"] == "knowledge_rag")["enabled"] is False
    c = await studio_ws()
    await c.send({"message": "How do I ingest documents?", "session_id": "rest-toggle", "request_id": "t1"})
    frames = await c.until_done("t1")
    rag = [f for f in frames if f["type"] == "step" and f["operator"] == "knowledge_rag"]
    assert all(f["status"] in ("skipped",) for f in rag), rag
    assert frames[-1]["type"] == "done" and frames[-1]["sources"] == []
    await jp_fetch("studio", "api", "pipeline", "nodes", "knowledge_rag", method="POST",
                   body=json.dumps({"enabled": True}))
    for bad, code in [(json.dumps({"enabled": "yes"}), 400), ("{", 400)]:
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch("studio", "api", "pipeline", "nodes", "knowledge_rag", method="PUT", body=bad)
        assert err.value.code == code
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("studio", "api", "pipeline", "nodes", "nope", method="PUT", body=json.dumps({"enabled": True}))
    assert err.value.code == 404 and json.loads(err.value.response.body)["code"] == "unknown_node"


async def test_sessions_history_export_delete(jp_fetch, studio_ws):
    sid = "rest-" + uuid.uuid4().hex[:8]
    c = await studio_ws()
    await c.send({"message": "What is an operator?", "session_id": sid, "request_id": "h1"})
    done = (await c.until_done("h1"))[-1]
    sessions = (await get_json(jp_fetch, "sessions"))["sessions"]
    mine = next(s for s in sessions if s["session_id"] == sid)
    assert mine["turns"] == 1 and mine["user"] == "local"
    turns = (await get_json(jp_fetch, "sessions", sid))["turns"]
    assert turns[0]["question"] == "What is an operator?" and turns[0]["answer"] == done["text"]
    md = await jp_fetch("studio", "api", "sessions", sid, "export", params={"format": "markdown"})
    assert "What is an operator?" in md.body.decode() and md.headers["Content-Type"].startswith("text/markdown")
    js = await get_json(jp_fetch, "sessions", sid, "export", params={"format": "json"})
    assert "What is an operator?" in json.dumps(js, ensure_ascii=False)
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("studio", "api", "sessions", sid, "export", params={"format": "pdf"})
    assert err.value.code == 400
    assert (await get_json(jp_fetch, "sessions", sid, method="DELETE")) == {"session_id": sid, "deleted_turns": 1}
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("studio", "api", "sessions", sid)
    assert err.value.code == 404 and json.loads(err.value.response.body)["code"] == "unknown_session"


async def test_upload_ingests_and_search_finds_it(jp_fetch):
    note = ("# Zebra pipelines\n\nThe quokka operator batches zebra frames before the "
            "striped sink writes them.\n").encode()
    ctype, body = multipart({"../../evil/zebra.md": note})
    r = await jp_fetch("studio", "api", "knowledge", "test_uploads", "files", method="POST", body=body,
                       headers={"Content-Type": ctype})
    assert r.code == 201
    out = json.loads(r.body)
    assert out["saved"] == [{"name": "zebra.md", "bytes": len(note)}]  # the path was stripped
    assert out["report"]["chunks_added"] >= 1 and out["report"]["errors"] == []
    domains = {d["name"]: d for d in (await get_json(jp_fetch, "knowledge"))["domains"]}
    assert domains["test_uploads"]["files"] == 1
    hits = (await get_json(jp_fetch, "search", params={"q": "quokka operator zebra", "domains": "test_uploads",
                                                       "k": "3"}))["hits"]
    assert hits and hits[0]["path"] == "zebra.md" and hits[0]["heading"].startswith("Zebra")
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("studio", "api", "search")
    assert err.value.code == 400


@pytest.mark.parametrize("studio_extra", [{"upload_max_bytes": 1000}])
async def test_upload_over_the_cap_is_refused(jp_fetch, studio_extra):
    ctype, body = multipart({"big.md": b"x" * 5000})
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("studio", "api", "knowledge", "test_uploads", "files", method="POST", body=body,
                       headers={"Content-Type": ctype})
    assert err.value.code == 413 and json.loads(err.value.response.body)["code"] == "too_large"


async def test_health_reports_warm_up_and_pipeline(jp_fetch, studio_ws):
    c = await studio_ws()
    await c.send({"message": "hi", "session_id": "rest-health", "request_id": "w"})
    await c.until_done("w")
    h = await get_json(jp_fetch, "health")
    assert h["runtime"]["status"] == "ready" and h["runtime"]["warm_up_s"] > 0
    assert h["pipeline"]["llm"]["loaded"] is True


@pytest.mark.parametrize("studio_extra", [{"overrides": {"telemetry": {"prometheus": True}}}])
async def test_metrics_are_served_when_telemetry_says_so(jp_fetch, studio_ws, studio_extra):
    """``telemetry: {prometheus: true}``: per-operator metrics at studio/metrics after a chat."""
    from tornado.httpclient import HTTPClientError

    c = await studio_ws()
    await c.send({"message": "compute 6*7", "session_id": "metrics", "request_id": "m1"})
    await c.until_done("m1")
    r = await jp_fetch("studio", "metrics")
    text = r.body.decode()
    assert r.headers["Content-Type"].startswith("text/plain")
    assert 'studio_nb_operator_runs_total{operator="intent_router",pipeline="studio",status="completed"}' in text
    assert 'studio_nb_operator_duration_seconds_bucket{le="0.1",operator="evidence",pipeline="studio"}' in text
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("studio", "metrics", headers={"Authorization": "token wrong"})
    assert refused.value.code == 403
