"""Issue #21 findings 3, 6, 7 and 8, each against a real Jupyter server naming several users
by token (alice, the admin here, bob, and user00 where a third is needed), the real
pipeline and the real models.

3. the data dir and all in it are owner-only, from birth or tightened on start;
6. the inspector shows a session of two turns (it answered 500);
7. a session id is a name in its user's namespace: nothing to probe, nothing to claim;
8. an operator's last error text is its user's (and the admins'), not everyone's.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.jupyter.identity import ManyUsers, TwoUsers, token
from tests.jupyter.test_isolation import api, ask, upload
from tests.memory.test_memory_namespaces import SCHEMA_BEFORE_NAMESPACES

pytestmark = pytest.mark.slow

ALICE, BOB, USER00 = token("alice"), token("bob"), token("user00")
#: a pipeline without the bundled docs: these servers start on a data dir of their own, and
#: ingesting studio-nb's documentation into each would only cost time
NO_DOCS = {"bundled_docs": False}


@pytest.fixture
def server_extra():
    return {"identity_provider_class": TwoUsers}


@pytest.fixture
def studio_extra(request):
    """alice is the admin; ``"fresh"``/``"loose"`` (indirect) give the server a data dir of
    the F3 tests' own (the fixture of that name), without the bundled docs."""
    extra = {"admin_users": ["alice"]}
    kind = getattr(request, "param", None)
    if kind is not None:
        extra["data_dir"] = str(request.getfixturevalue(f"{kind}_data_dir"))
        extra["overrides"] = dict(NO_DOCS)
    return extra


# ---------------------------------------------------------------- F3: owner-only storage
@pytest.fixture
def umask_022():
    """The usual umask, under which a plain mkdir makes 0755 and a plain open 0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def home_like():
    """A folder other users may enter, as a home directory usually is (pytest's own tmp
    folders are 0700, which would hide a loose data dir and prove nothing)."""
    base = Path(tempfile.mkdtemp(prefix="studio-home-"))
    os.chmod(base, 0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _modes(root: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for p in sorted(root.rglob("*")):
        if not p.is_symlink():
            out[str(p.relative_to(root))] = stat.S_IMODE(p.stat().st_mode)
    return out


def _loose(modes: dict[str, int]) -> dict[str, str]:
    return {name: oct(mode) for name, mode in modes.items() if mode & 0o077}


def _as_nobody(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", *cmd],
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def fresh_data_dir(home_like, umask_022):
    return home_like / "studio-data"  # does not exist yet: the server creates it


@pytest.mark.parametrize("studio_extra", ["fresh"], indirect=True)
async def test_f3_a_new_data_dir_is_owner_only_through_and_through(fresh_data_dir, studio_extra, jp_fetch,
                                                                   studio_ws):
    secret = "alice's heron-password-4471"
    await ask(studio_ws, ALICE, f"remember this: {secret}", "f3-s", "f3a")
    note = b"# Alice's plan\n\nThe okapi ledger is hidden in vault nine behind the quince door.\n"
    await upload(jp_fetch, "alice_f3_private", {"plan.md": note}, ALICE)
    modes = _modes(fresh_data_dir)
    expected = {"memory.sqlite3", "memory.sqlite3-wal", "memory.sqlite3-shm", "uploads/alice_f3_private/plan.md",
                "knowledge/alice_f3_private/chunks.sqlite3", "knowledge/alice_f3_private/chunks.sqlite3-wal",
                "knowledge/alice_f3_private/vectors.hnsw", "knowledge/alice_f3_private/vectors.gen", "cache"}
    assert expected <= set(modes), sorted(modes)
    assert any(name.startswith("cache/") for name in modes), sorted(modes)  # the intent prototypes' cache
    assert _loose(modes) == {}
    assert {m for n, m in modes.items() if (fresh_data_dir / n).is_dir()} == {0o700}
    if os.getuid() == 0 and shutil.which("setpriv"):  # another local user really cannot read it
        db = fresh_data_dir / "memory.sqlite3"
        assert secret.encode() in db.read_bytes() + (fresh_data_dir / "memory.sqlite3-wal").read_bytes()
        for cmd in (("cat", str(db)), ("ls", str(fresh_data_dir)),
                    ("cat", str(fresh_data_dir / "uploads" / "alice_f3_private" / "plan.md"))):
            out = _as_nobody(*cmd)
            assert out.returncode != 0 and "Permission denied" in out.stderr, (cmd, out)
        assert _as_nobody("ls", str(fresh_data_dir.parent)).returncode == 0  # the check itself works


@pytest.fixture
def loose_data_dir(home_like, umask_022):
    """A data dir as an older studio-nb left it: 0755 folders, 0644 files, and a memory
    database made with the schema that keyed sessions by id alone (alice's "old-s")."""
    data = home_like / "old-data"
    for folder in ("knowledge", "cache", "uploads/alice_old"):
        (data / folder).mkdir(parents=True)
    (data / "uploads" / "alice_old" / "note.md").write_text("# old\n\nan old private upload\n")
    (data / "cache" / "stale.npy").write_bytes(b"\x93NUMPY")
    with sqlite3.connect(data / "memory.sqlite3") as conn:
        conn.executescript(SCHEMA_BEFORE_NAMESPACES)
        conn.execute("INSERT INTO sessions VALUES ('old-s', 'alice', 'the old question', 1.0, 1.0)")
        conn.execute("INSERT INTO turns(session_id, user, question, answer, intent, sources, created_at,"
                     " request_id) VALUES ('old-s', 'alice', 'the old question', 'the old answer',"
                     " 'GENERAL_CHAT', '[]', 1.0, 'r-old')")
    for p in [data, *data.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    assert len(_loose(_modes(data))) >= 8
    return data


@pytest.fixture
def private_files_log():
    """What the data dir's tightening logs (its own handler: the server's logging setup
    must not decide whether the test sees it)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(logging.INFO)
    logger = logging.getLogger("studio_nb.services.private_files")
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)


@pytest.mark.parametrize("studio_extra", ["loose"], indirect=True)
async def test_f3_an_existing_loose_data_dir_is_tightened_on_start_and_keeps_working(
        loose_data_dir, private_files_log, studio_extra, jp_fetch):
    sessions = await api(jp_fetch, "sessions", headers=ALICE)  # waits for the start (warm-up) to finish
    assert _loose(_modes(loose_data_dir)) == {}
    lines = [r.getMessage() for r in private_files_log if r.levelno >= logging.WARNING]
    assert any(str(loose_data_dir) in line and "readable by other local users" in line and "owner-only" in line
               for line in lines), lines
    # the old database was migrated: alice's session is hers, and only hers
    assert [s["session_id"] for s in sessions["sessions"]] == ["old-s"]
    turns = (await api(jp_fetch, "sessions", "old-s", headers=ALICE))["turns"]
    assert [(t["question"], t["answer"]) for t in turns] == [("the old question", "the old answer")]
    assert (await api(jp_fetch, "sessions", "old-s", headers=BOB, expect=404))["code"] == "unknown_session"
    if os.getuid() == 0 and shutil.which("setpriv"):
        out = _as_nobody("cat", str(loose_data_dir / "memory.sqlite3"))
        assert out.returncode != 0 and "Permission denied" in out.stderr, out


# ---------------------------------------------------------------- F6: the inspector on two turns
async def test_f6_the_trace_of_a_session_with_two_turns_is_shown(jp_fetch, studio_ws):
    sid = "f6-two-turns"
    await ask(studio_ws, ALICE, "What is a ParallelGroup?", sid, "f6a")
    await ask(studio_ws, ALICE, "And how is it configured?", sid, "f6b")
    view = await api(jp_fetch, "sessions", sid, "trace", headers=ALICE)  # answered 500 before
    assert view["request_id"] == "f6b"
    loader = next(r for r in view["trace"]["records"] if r["operator"] == "memory_loader")
    memory = {p["label"]: p["text"] for p in loader["output"]["parts"]}["memory"]
    assert "recent: What is a ParallelGroup?" in memory
    older = await api(jp_fetch, "sessions", sid, "trace", headers=ALICE, params={"request_id": "f6a"})
    assert older["request_id"] == "f6a"
    # and "replay from here" on that turn works
    ws = await studio_ws(headers=dict(ALICE))
    await ws.send({"type": "replay", "session_id": sid, "request_id": "f6r", "from": "evidence"})
    done = (await ws.until_done("f6r"))[-1]
    assert done["type"] == "done" and done["replay_of"] == "f6b", done


# ---------------------------------------------------------------- F7: ids are per user
async def test_f7_a_session_id_names_the_callers_own_session(jp_fetch, studio_ws):
    secret = "the heron sleeps at pier 31"
    await ask(studio_ws, ALICE, f"remember: {secret}", "f7-s", "f7a")
    answers = {}
    for sid in ("f7-s", "f7-unused"):  # alice's id and an id nobody used
        variants = await api(jp_fetch, "pipeline", "variants", method="PUT", headers=BOB,
                             body=json.dumps({"session_id": sid, "setting": "answer_mode", "value": "extractive"}))
        node = await api(jp_fetch, "pipeline", "nodes", "tool_executor", method="PUT", headers=BOB,
                         body=json.dumps({"enabled": False, "session_id": sid}))
        rest = [await api(jp_fetch, "sessions", sid, *p, headers=BOB, expect=404) for p in ((), ("export",), ("trace",))]
        node.pop("session_id")
        answers[sid] = (variants, node, [(r["code"], r["message"].replace(sid, "<id>")) for r in rest])
    assert answers["f7-s"] == answers["f7-unused"]  # alike, so nothing tells bob that alice has one
    assert answers["f7-s"][1]["disabled"] == ["tool_executor"]
    # what bob switched is his "f7-s", not alice's
    mine = await api(jp_fetch, "pipeline", "variants", headers=ALICE, params={"session_id": "f7-s"})
    assert next(s for s in mine["settings"] if s["name"] == "answer_mode")["value"] == "grounded"
    graph = await api(jp_fetch, "pipeline", headers=ALICE, params={"session_id": "f7-s"})
    assert next(n for n in graph["nodes"] if n["name"] == "tool_executor")["enabled"] is True
    # a chat on that id is bob's own session: it claims nothing and sees none of hers
    frames = await ask(studio_ws, BOB, "what did I ask you to remember?", "f7-s", "f7b")
    assert frames[-1]["mode"] == "extractive"  # his variant applies to his session
    bob_view = await api(jp_fetch, "sessions", "f7-s", "trace", headers=BOB)
    assert "heron" not in json.dumps(frames) + json.dumps(bob_view)
    loader = next(r for r in bob_view["trace"]["records"] if r["operator"] == "memory_loader")
    assert {p["label"]: p["text"] for p in loader["output"]["parts"]}["memory"] == "(no earlier turns)"
    bob_turns = (await api(jp_fetch, "sessions", "f7-s", headers=BOB))["turns"]
    alice_turns = (await api(jp_fetch, "sessions", "f7-s", headers=ALICE))["turns"]
    assert [t["user"] for t in bob_turns] == ["bob"] and [t["user"] for t in alice_turns] == ["alice"]
    assert secret in alice_turns[0]["question"]
    # bob clearing his "f7-s" leaves hers
    assert (await api(jp_fetch, "sessions", "f7-s", method="DELETE", headers=BOB))["deleted_turns"] == 1
    assert len((await api(jp_fetch, "sessions", "f7-s", headers=ALICE))["turns"]) == 1


# ---------------------------------------------------------------- F8: errors are their user's
@pytest.mark.parametrize("server_extra", [{"identity_provider_class": ManyUsers}])
@pytest.mark.parametrize("studio_extra", [{"admin_users": ["alice"], "overrides": {"max_chars": 40}}])
async def test_f8_an_operators_last_error_text_is_shown_to_its_user_only(server_extra, studio_extra, jp_fetch,
                                                                         studio_ws):
    async def refused(headers, n, rid):
        ws = await studio_ws(headers=dict(headers))
        await ws.send({"message": "x" * n, "session_id": "f8", "request_id": rid})
        frame = (await ws.until_done(rid))[-1]
        ws.ws.close()
        assert frame["type"] == "error" and frame["code"] == "too_long", frame
        return f"has {n} characters"

    async def last_error(headers):
        graph = await api(jp_fetch, "pipeline", headers=headers)
        stats = next(n for n in graph["nodes"] if n["name"] == "user_input")["stats"]
        return stats["last_status"], stats["last_error"]

    bobs = await refused(BOB, 57, "f8b")
    status, error = await last_error(USER00)
    assert status == "failed" and error is None  # the status is everyone's, bob's text is not
    assert bobs in (await last_error(BOB))[1]
    assert bobs in (await last_error(ALICE))[1]  # the admin sees the server's last error
    theirs = await refused(USER00, 63, "f8u")
    assert theirs in (await last_error(USER00))[1]
    assert bobs in (await last_error(BOB))[1] and theirs not in (await last_error(BOB))[1]
