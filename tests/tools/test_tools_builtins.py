"""The built-in tools through default_registry, as the tool branch will call them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from studio_nb.errors import ToolError
from studio_nb.services.tools import default_registry, select_tool_calls
from studio_nb.services.knowledge.types import Chunk, SearchHit
from studio_nb.services.tools.pyhelp import python_help

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Info:
    name: str
    chunks: int


def Hit(chunk: Chunk, score: float) -> SearchHit:
    return SearchHit(chunk, score)


class TinyKnowledge:
    """Just the duck type the knowledge tools need: domains() and search()."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def domains(self) -> list[Info]:
        return [Info("sage_docs", 3), Info("examples", 1)]

    def search(self, query: str, domains=None, k: int = 5) -> list[Hit]:
        self.calls.append((query, domains, k))
        chunk = Chunk(7, "sage_docs", "docs/intro.md", "简介", 1, 5, "SAGE 是一个数据流框架" * 100, "markdown")
        return [Hit(chunk, 0.91234)][:k]


@pytest.fixture
def reg(tmp_path):
    (tmp_path / "README.md").write_text("hello workspace", encoding="utf-8")
    registry = default_registry(tmp_path, knowledge=TinyKnowledge())
    yield registry
    registry.close()


def test_all_builtins_are_registered(reg):
    assert {s.name: s.pool for s in reg.specs()} == {
        "calculator": "cpu", "python_help": "io", "datetime_now": "io", "list_domains": "io",
        "knowledge_search": "io", "read_file": "io", "list_files": "io"}
    assert not any(s.side_effects for s in reg.specs())


async def test_knowledge_tools(reg):
    assert (await reg.call("list_domains")).result == [{"name": "sage_docs", "chunks": 3},
                                                         {"name": "examples", "chunks": 1}]
    hits = (await reg.call("knowledge_search", {"query": "什么是 SAGE", "domain": "sage_docs", "k": 2})).result
    assert hits[0]["ref"] == "sage_docs/docs/intro.md:L1-L5" and hits[0]["heading"] == "简介" and hits[0]["score"] == 0.91234
    assert len(hits[0]["text"]) == 801 and hits[0]["text"].endswith("…")
    bad = await reg.call("knowledge_search", {"query": "x", "domain": "nope"})
    assert bad.error == "unknown domain 'nope'; available: sage_docs, examples"
    assert "maximum of 20" in (await reg.call("knowledge_search", {"query": "x", "k": 500})).error


async def test_knowledge_tools_without_a_knowledge_base(tmp_path):
    reg = default_registry(tmp_path)
    call = await reg.call("list_domains")
    assert call.error_code == "tool_error" and "no knowledge base is configured" in call.error


async def test_datetime_now(reg):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    utc = (await reg.call("datetime_now")).result
    assert utc["timezone"] == "UTC" and utc["utc_offset"] == "+0000"
    assert datetime.fromisoformat(utc["iso"]) >= before
    sh = (await reg.call("datetime_now", {"timezone": "Asia/Shanghai"})).result
    assert sh["utc_offset"] == "+0800"
    for bad in ("Mars/Olympus", "../../etc/passwd"):
        call = await reg.call("datetime_now", {"timezone": bad})
        assert "unknown time zone" in call.error


def test_python_help():
    out = python_help("json.dumps")
    assert out["kind"] == "function" and out["module"] == "json"
    assert out["signature"].startswith("dumps(obj, *, skipkeys=False")
    assert "JSON formatted" in out["doc"]
    assert python_help("os.path.join")["module"] == "os.path"
    assert python_help("collections")["kind"] == "module" and python_help("collections")["signature"] is None
    assert python_help("pathlib.Path.resolve")["kind"] == "function"
    long_doc = python_help("argparse.ArgumentParser", max_chars=50)
    assert long_doc["truncated"] and long_doc["doc"].endswith("[... truncated]")


@pytest.mark.parametrize("name, message", [
    ("os; rm -rf /", "not a dotted Python name"),
    ("__import__('os')", "not a dotted Python name"),
    ("json.__class__", "dunder names"),
    ("antigravity", "side effects"),
    ("no_such_module_xyz.f", "no module named 'no_such_module_xyz'"),
    ("json.no_such_attr", "has no attribute path 'no_such_attr'"),
    ("a" * 300, "not a dotted Python name"),
])
def test_python_help_refusals(name, message):
    with pytest.raises(ToolError, match=message):
        python_help(name)


def test_python_help_refuses_side_effects_pulled_in_indirectly():
    """F7: turtledemo is harmless, but turtledemo.clock imports turtle -> tkinter. Run in a
    fresh interpreter so nothing imported earlier hides the import."""
    import subprocess
    import sys

    code = """
import sys
from studio_nb.errors import ToolError
from studio_nb.services.tools.pyhelp import python_help
try:
    python_help("turtledemo.clock")
except ToolError as exc:
    print("refused:", exc)
print("imported:", sorted(m for m in ("turtle", "tkinter", "_tkinter") if m in sys.modules))
print("guard left:", any(type(f).__name__ == "_Guard" for f in sys.meta_path))
print("stdlib:", python_help("json.dumps")["module"])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "refused: 'turtledemo.clock' is not imported by python_help: it imports 'turtle'" in out.stdout
    assert "imported: []" in out.stdout and "guard left: False" in out.stdout and "stdlib: json" in out.stdout


def test_python_help_does_not_import_unloaded_third_party_packages():
    """F7: an installed package the server never imported is not imported by a chat."""
    import sys

    assert "pip" not in sys.modules
    with pytest.raises(ToolError, match="standard library and packages the server has already imported"):
        python_help("pip.main")
    assert "pip" not in sys.modules
    assert python_help("pytest.raises")["kind"] == "function"  # already imported: fine


async def test_file_tools_through_the_registry(reg):
    assert (await reg.call("read_file", {"path": "README.md"})).result["text"] == "hello workspace"
    escaped = await reg.call("read_file", {"path": "../../etc/passwd"})
    assert escaped.error_code == "path_escape"
    listed = (await reg.call("list_files", {})).result
    assert [e["path"] for e in listed["entries"]] == ["README.md"]
    forged = await reg.call("read_file", {"path": "README.md", "user": "alice"})  # the caller cannot pick the user
    assert forged.error_code == "tool_error" and "user" in forged.error


async def test_knowledge_tools_get_the_requesting_user(tmp_path):
    class PerUser(TinyKnowledge):
        def domains(self, user=None):
            return [Info("shared", 1)] + ([Info(f"{user}_notes", 1)] if user else [])

        def search(self, query, domains=None, k=5, user=None):
            self.calls.append((query, domains, k, user))
            return []

    km = PerUser()
    registry = default_registry(tmp_path, knowledge=km)
    try:
        listed = await registry.call("list_domains", {}, user="bob")
        assert [d["name"] for d in listed.result] == ["shared", "bob_notes"]
        refused = await registry.call("knowledge_search", {"query": "x", "domain": "alice_notes"}, user="bob")
        assert "unknown domain 'alice_notes'" in refused.error
        await registry.call("knowledge_search", {"query": "x"}, user="bob")
        assert km.calls[-1] == ("x", None, 5, "bob")
    finally:
        registry.close()


@pytest.mark.parametrize("intent, text, check", [
    ("GENERAL_CHAT", "计算 17*23 等于多少", lambda r: r == 391),
    ("GENERAL_CHAT", "what is (3+4)**2?", lambda r: r == 49),
    ("GENERAL_CHAT", "现在几点了", lambda r: r["timezone"] == "UTC"),
    ("KNOWLEDGE_QUERY", "有哪些知识库", lambda r: [d["name"] for d in r] == ["sage_docs", "examples"]),
    ("SAGE_CODING", "help on json.dumps", lambda r: r["signature"].startswith("dumps(")),
    ("SYSTEM_OPERATION", "read file README.md", lambda r: r["text"] == "hello workspace"),
    ("SYSTEM_OPERATION", "列出所有文件", lambda r: r["entries"][0]["path"] == "README.md"),
])
async def test_selection_then_call_end_to_end(reg, intent, text, check):
    calls = select_tool_calls(intent, text)
    assert len(calls) == 1
    result = await reg.call(*calls[0])
    assert result.ok, result.error
    assert check(result.result)
