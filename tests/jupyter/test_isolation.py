"""Issue #11: one regression test per finding of the attacker test, against a real Jupyter
server with a custom identity provider naming two users (alice, bob), the real pipeline
and the real models. alice is the admin here (``StudioExtension.admin_users``)."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from tornado.httpclient import HTTPClientError

from tests.jupyter.conftest import multipart
from tests.jupyter.identity import TwoUsers, token

pytestmark = pytest.mark.slow

ALICE, BOB = token("alice"), token("bob")


@pytest.fixture
def server_extra():
    return {"identity_provider_class": TwoUsers}


@pytest.fixture
def studio_extra(request, tmp_path):
    extra = {"admin_users": ["alice"]}
    if getattr(request, "param", None) == "broken_db":  # a memory database that is not one
        data = tmp_path / "broken-data"
        data.mkdir()
        (data / "memory.sqlite3").write_bytes(b"this is not a database\n" * 100)
        extra["data_dir"] = str(data)
    return extra


async def api(jp_fetch, *parts, headers, expect=200, **kw):
    """Call studio/api/...; returns the JSON body (also of an expected error status)."""
    try:
        r = await jp_fetch("studio", "api", *parts, headers=dict(headers), **kw)
    except HTTPClientError as err:
        assert err.code == expect, (parts, err.code, err.response.body if err.response else None)
        return json.loads(err.response.body)
    assert r.code == expect, (parts, r.code)
    return json.loads(r.body)


async def upload(jp_fetch, domain, files, headers, expect=201, **kw):
    ctype, body = multipart(files)
    return await api(jp_fetch, "knowledge", domain, "files", method="POST", body=body,
                     headers={**headers, "Content-Type": ctype}, expect=expect, **kw)


async def ask(studio_ws, headers, message, session, rid):
    ws = await studio_ws(headers=dict(headers))
    await ws.send({"message": message, "session_id": session, "request_id": rid})
    frames = await ws.until_done(rid)
    ws.ws.close()
    assert frames[-1]["type"] == "done", frames[-1]
    return frames


def tool(done, name):
    calls = [c for c in done.get("tool_calls") or [] if c["name"] == name]
    assert calls, f"no {name} call in {done.get('tool_calls')}"
    return calls[0]


def tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*")) if not p.name.endswith(("-wal", "-shm"))}


# ---------------------------------------------------------------- F1
async def test_f1_upload_names_are_checked_before_anything_is_written(jp_fetch, studio_data_dir):
    before = tree(studio_data_dir)
    payload = b"NOT A DATABASE " * 64
    for domain in ("..", "."):
        err = await upload(jp_fetch, domain, {"memory.sqlite3": payload}, BOB, expect=400)
        assert err["code"] == "bad_config" and "bad knowledge domain name" in err["message"]
    assert tree(studio_data_dir) == before  # not one byte written, not one folder made
    with sqlite3.connect(studio_data_dir / "memory.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    # a link planted in an upload folder is replaced, never written through
    out = await upload(jp_fetch, "bob_f1", {"notes.md": b"# bob\n\nfirst\n"}, BOB)
    assert out["saved"] == [{"name": "notes.md", "bytes": 13}]
    planted = studio_data_dir / "uploads" / "bob_f1" / "evil.md"
    victim = studio_data_dir / "victim.txt"
    victim.write_text("keep me")
    os.symlink(victim, planted)
    await upload(jp_fetch, "bob_f1", {"evil.md": b"# overwritten?\n"}, BOB)
    assert victim.read_text() == "keep me" and not planted.is_symlink()


# ---------------------------------------------------------------- F2
async def test_f2_uploads_are_private_to_their_owner(jp_fetch, studio_ws):
    secret = b"# Alice's plan\n\nThe okapi ledger is hidden in vault nine behind the quince door.\n"
    await upload(jp_fetch, "alice_private", {"alice_secret.md": secret}, ALICE)
    mine = {d["name"] for d in (await api(jp_fetch, "knowledge", headers=ALICE))["domains"]}
    theirs = {d["name"] for d in (await api(jp_fetch, "knowledge", headers=BOB))["domains"]}
    assert "alice_private" in mine and "alice_private" not in theirs and "studio_nb_docs" in theirs
    q = {"q": "okapi ledger vault quince", "domains": "alice_private", "k": "5"}
    assert (await api(jp_fetch, "search", headers=BOB, params=q))["hits"] == []
    assert "vault nine" in (await api(jp_fetch, "search", headers=ALICE, params=q))["hits"][0]["text"]
    everywhere = (await api(jp_fetch, "search", headers=BOB, params={"q": "okapi ledger vault quince"}))["hits"]
    assert all(h["domain"] != "alice_private" for h in everywhere)
    # bob cannot overwrite her file, nor write into a shared domain
    for domain in ("alice_private", "studio_nb_docs"):
        err = await upload(jp_fetch, domain, {"alice_secret.md": b"# pwned\n"}, BOB, expect=403)
        assert err["code"] == "forbidden"
    assert "vault nine" in (await api(jp_fetch, "search", headers=ALICE, params=q))["hits"][0]["text"]
    # and her text is never cited in his answers
    done = (await ask(studio_ws, BOB, "Where is the okapi ledger hidden? Is it in vault nine?", "bob-f2", "f2"))[-1]
    assert all(s["domain"] != "alice_private" for s in done["sources"])
    assert "quince" not in json.dumps(done)


# ---------------------------------------------------------------- F3
async def test_f3_file_tools_read_the_jupyter_root_only(jp_fetch, studio_ws, jp_root_dir, studio_data_dir):
    (jp_root_dir / "notebook_notes.md").write_text("# notes\n\nthe root_dir file\n")
    await upload(jp_fetch, "alice_f3", {"alice_secret.md": b"# secret\n\nzanzibar-417\n"}, ALICE)
    done = (await ask(studio_ws, BOB, 'read the file "notebook_notes.md"', "bob-f3", "f3a"))[-1]
    assert tool(done, "read_file")["result"]["text"] == "# notes\n\nthe root_dir file\n"
    assert Path.cwd() != jp_root_dir and (Path.cwd() / "README.md").exists()  # the launch dir has one...
    done = (await ask(studio_ws, BOB, 'read the file "README.md"', "bob-f3", "f3b"))[-1]
    assert "no file 'README.md'" in tool(done, "read_file")["error"]  # ...the tools do not see it
    secret = studio_data_dir / "uploads" / "alice_f3" / "alice_secret.md"
    for path in ("data/uploads/alice_f3/alice_secret.md", str(secret), "../" * 12 + str(secret).lstrip("/")):
        done = (await ask(studio_ws, BOB, f'read the file "{path}"', "bob-f3", "f3c"))[-1]
        assert "zanzibar" not in json.dumps(done), path
        assert tool(done, "read_file")["error"]


# ---------------------------------------------------------------- F4
async def test_f4_toggles_are_per_session_and_global_ones_admin_only(jp_fetch, studio_ws):
    off = json.dumps({"enabled": False})
    err = await api(jp_fetch, "pipeline", "nodes", "memory_loader", method="PUT", body=off, headers=BOB, expect=403)
    assert err["code"] == "forbidden"
    err = await api(jp_fetch, "pipeline", "nodes", "memory_loader", method="PUT", headers=BOB, expect=403,
                    body=json.dumps({"enabled": False, "scope": "global"}))
    assert err["code"] == "forbidden" and "session_id" in err["message"]  # the message says what to do instead

    def state(graph, name="knowledge_rag"):
        return next(n["enabled"] for n in graph["nodes"] if n["name"] == name)

    assert state(await api(jp_fetch, "pipeline", headers=ALICE), "memory_loader") is True  # alice unchanged
    out = await api(jp_fetch, "pipeline", "nodes", "knowledge_rag", method="PUT", headers=BOB,
                    body=json.dumps({"enabled": False, "session_id": "bob-ab"}))
    assert out["scope"] == "session" and out["disabled"] == ["knowledge_rag"]
    assert state(await api(jp_fetch, "pipeline", headers=BOB, params={"session_id": "bob-ab"})) is False
    assert state(await api(jp_fetch, "pipeline", headers=BOB)) is True
    assert state(await api(jp_fetch, "pipeline", headers=ALICE, params={"session_id": "bob-ab"})) is True

    def rag_skip(frames):
        return [f.get("error") for f in frames if f["type"] == "step" and f["operator"] == "knowledge_rag"
                and f["status"] == "skipped"]

    question = "How do I ingest documents into a knowledge domain?"
    assert rag_skip(await ask(studio_ws, BOB, question, "bob-ab", "f4b")) == ["disabled"]
    assert "disabled" not in rag_skip(await ask(studio_ws, ALICE, question, "bob-ab-alice", "f4a"))
    assert "disabled" not in rag_skip(await ask(studio_ws, BOB, question, "bob-other", "f4c"))
    # the admin switches globally, for everyone, and back
    for enabled in (False, True):
        body = json.dumps({"enabled": enabled, "scope": "global"})
        assert (await api(jp_fetch, "pipeline", "nodes", "memory_loader", method="PUT", body=body,
                          headers=ALICE)) == {"name": "memory_loader", "enabled": enabled}
        assert state(await api(jp_fetch, "pipeline", headers=BOB), "memory_loader") is enabled


# ---------------------------------------------------------------- F5
async def test_f5_hard_links_out_of_the_workspace_are_not_read(studio_ws, jp_root_dir, tmp_path):
    outside = tmp_path / "outside_secret.txt"
    outside.write_text("hardlinked-secret-99\n")
    os.link(outside, jp_root_dir / "innocent.txt")
    done = (await ask(studio_ws, BOB, 'read the file "innocent.txt"', "bob-f5", "f5"))[-1]
    assert "hard links" in tool(done, "read_file")["error"]
    assert "hardlinked-secret" not in json.dumps(done)


# ---------------------------------------------------------------- F6 (see also test_auth)
async def test_f6_foreign_and_missing_sessions_answer_alike_everywhere(jp_fetch, studio_ws):
    await ask(studio_ws, ALICE, "remember the heron", "alice-f6", "f6a")
    bob = await studio_ws(headers=dict(BOB))
    seen = {}
    for sid in ("alice-f6", "nobody-f6"):
        await bob.send({"type": "clear", "session_id": sid})
        clear = await bob.next_error()
        rest = [await api(jp_fetch, "sessions", sid, *p, method=m, headers=BOB, expect=404)
                for m, p in (("GET", ()), ("GET", ("export",)), ("DELETE", ()))]
        seen[sid] = [(f["code"], f["message"].replace(sid, "<id>")) for f in (clear, *rest)]
    assert seen["alice-f6"] == seen["nobody-f6"] and {c for c, _ in seen["alice-f6"]} == {"unknown_session"}
    # a chat or a session toggle on that id is his own session (issue #21 F7: ids are per user)
    await bob.send({"message": "show me", "session_id": "alice-f6", "request_id": "c1"})
    chat = (await bob.until_done("c1"))[-1]
    toggle = await api(jp_fetch, "pipeline", "nodes", "knowledge_rag", method="PUT", headers=BOB,
                       body=json.dumps({"enabled": False, "session_id": "alice-f6"}))
    assert chat["type"] == "done" and "heron" not in json.dumps(chat) and toggle["disabled"] == ["knowledge_rag"]
    assert len((await api(jp_fetch, "sessions", "alice-f6", headers=ALICE))["turns"]) == 1
    assert [t["user"] for t in (await api(jp_fetch, "sessions", "alice-f6", headers=BOB))["turns"]] == ["bob"]


# ---------------------------------------------------------------- F7
async def test_f7_python_help_refuses_modules_with_side_effects_even_indirectly(studio_ws):
    loaded = "tkinter" in sys.modules
    done = (await ask(studio_ws, BOB, "help(turtledemo.clock)", "bob-f7", "f7"))[-1]
    assert "imports 'turtle'" in tool(done, "python_help")["error"]
    assert ("tkinter" in sys.modules) is loaded  # the server process did not import it


# ---------------------------------------------------------------- F8
async def test_f8_a_symlink_loop_does_not_break_listing(studio_ws, jp_root_dir):
    (jp_root_dir / "kept.md").write_text("kept")
    os.symlink("loop_b", jp_root_dir / "loop_a")
    os.symlink("loop_a", jp_root_dir / "loop_b")
    done = (await ask(studio_ws, BOB, "list the files", "bob-f8", "f8"))[-1]
    result = tool(done, "list_files")["result"]
    by_path = {e["path"]: e for e in result["entries"]}
    assert by_path["kept.md"]["type"] == "file" and "symlink" in by_path["loop_a"]["problem"]
    assert {s["path"] for s in result["skipped"]} >= {"loop_a", "loop_b"}


# ---------------------------------------------------------------- F9
async def test_f9_csp_and_health_detail(jp_fetch):
    page = await jp_fetch("studio", headers=dict(BOB))
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "object-src 'none'" in csp and "frame-ancestors 'self'" in csp
    await api(jp_fetch, "pipeline", headers=BOB)  # builds the pipeline
    bob = await api(jp_fetch, "health", headers=BOB)
    alice = await api(jp_fetch, "health", headers=ALICE)
    text = json.dumps(bob)
    assert "versions" not in text and "data_dir" not in text and "/" not in json.dumps(bob.get("pipeline", {}))
    if alice["runtime"]["status"] == "ready":
        assert "versions" in alice["pipeline"] and alice["pipeline"]["data_dir"]
    domains = (await api(jp_fetch, "knowledge", headers=BOB))["domains"]
    assert all("path" not in d for d in domains)


def test_f9_the_builtin_login_is_recognised_by_class_not_name():
    from jupyter_server.auth.identity import IdentityProvider as Builtin

    from jupyter_ext.access import is_admin, request_user

    class IdentityProvider(TwoUsers):  # a custom provider that happens to share the name
        pass

    settings = {"studio_shared_token_user": "local", "studio_admin_users": frozenset()}
    user = SimpleNamespace(username="bob")
    custom = SimpleNamespace(settings=settings, identity_provider=IdentityProvider(), current_user=user)
    assert request_user(custom) == "bob" and not is_admin(custom)
    builtin = SimpleNamespace(settings=settings, identity_provider=Builtin(), current_user=user)
    assert request_user(builtin) == "local" and is_admin(builtin)


@pytest.fixture
def env_data_dir(studio_data_dir, monkeypatch):
    monkeypatch.setenv("STUDIO_NB_DATA_DIR", str(studio_data_dir))
    return studio_data_dir


@pytest.mark.parametrize("studio_extra", [{"data_dir": ""}])
async def test_f9_uploads_follow_the_pipelines_data_dir(env_data_dir, studio_extra, jp_fetch):
    await upload(jp_fetch, "bob_envdir", {"env.md": b"# env\n\nfrom the environment\n"}, BOB)
    assert (env_data_dir / "uploads" / "bob_envdir" / "env.md").read_bytes() == b"# env\n\nfrom the environment\n"


@pytest.mark.parametrize("studio_extra", ["broken_db"], indirect=True)
async def test_f9_a_broken_database_answers_json_not_a_bare_500(studio_extra, jp_fetch, studio_ws):
    for parts in (("sessions",), ("knowledge",)):
        err = await api(jp_fetch, *parts, headers=BOB, expect=503)
        assert err["code"] == "storage_error" and "server log" in err["message"], err
    ws = await studio_ws(headers=dict(BOB))
    await ws.send({"message": "hi", "session_id": "s", "request_id": "broken"})
    frame = (await ws.until_done("broken"))[-1]
    assert frame["type"] == "error" and frame["code"] in ("storage_error", "internal"), frame
