"""The ``studio-nb`` command as a user runs it: real subprocesses, a temporary data dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
EXAMPLES = ["L4-middleware/hello_service_world.py", "L3-kernel/advanced/hello_realistic_service_example.py"]


def run(data_dir: Path, *args: str, stdin: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "STUDIO_NB_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "studio_nb.cli", *args],
        input=stdin, capture_output=True, text=True, timeout=timeout, env=env,
    )


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, shared_data):
    root = tmp_path_factory.mktemp("cli")
    examples = root / "examples"
    for rel in EXAMPLES:
        (examples / rel).parent.mkdir(parents=True, exist_ok=True)
        (examples / rel).write_bytes((shared_data / "sage_examples" / rel).read_bytes())
    out = run(root / "data", "ingest", str(examples), "--domain", "examples")
    assert out.returncode == 0, out.stderr
    assert "examples: 2 files" in out.stdout
    assert "%|" in out.stderr  # the tqdm progress bar
    return root / "data"


def test_route_json(data_dir):
    out = run(data_dir, "route", "compute 17*23", "--json")
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["intent"] == "SYSTEM_OPERATION" and 0 <= record["confidence"] <= 1


def test_route_reads_stdin_and_prints_json_lines(data_dir):
    out = run(data_dir, "route", "-", stdin="hello there\n什么是 LocalEnvironment？\n")
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["text"] for r in lines] == ["hello there", "什么是 LocalEnvironment？"]
    assert lines[0]["intent"] == "GENERAL_CHAT" and lines[1]["intent"] == "KNOWLEDGE_QUERY"


def test_search_returns_sources_with_line_ranges(data_dir):
    out = run(data_dir, "search", "how do I register a service and call it from a map function", "--json")
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert hits and all({"ref", "path", "start_line", "end_line", "score"} <= set(h) for h in hits)
    assert hits[0]["path"] in EXAMPLES and hits[0]["start_line"] <= hits[0]["end_line"]


def test_chat_json_records_the_calculator_call(data_dir):
    out = run(data_dir, "chat", "compute 17*23", "--json", "--max-tokens", "24")
    assert out.returncode == 0, out.stderr
    resp = json.loads(out.stdout)
    calc = [t for t in resp["tool_calls"] if t["name"] == "calculator"]
    assert calc and calc[0]["result"] == 391
    assert resp["intent"] == "SYSTEM_OPERATION" and resp["turn_id"] is not None
    history = run(data_dir, "history", "cli", "--format", "json")
    assert "17*23" in history.stdout


def test_errors_are_clear_and_exit_2(data_dir):
    out = run(data_dir, "history", "no-such-session")
    assert out.returncode == 2
    assert "error [unknown_session]" in out.stderr


def test_doctor_finds_the_models(data_dir):
    out = run(data_dir, "doctor")
    assert out.returncode == 0, out.stdout
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in out.stdout and "all required checks passed" in out.stdout


def test_pipeline_prints_graph_and_yaml(data_dir):
    out = run(data_dir, "pipeline", "--yaml")
    assert out.returncode == 0, out.stderr
    assert "operator: KnowledgeRAGOp" in out.stdout and "feedback: true" in out.stdout


def test_chat_dash_answers_one_json_line_per_question(data_dir):
    """``studio-nb chat -``: each stdin line is its own new session; one JSON response per line."""
    out = run(data_dir, "chat", "-", stdin="compute 17*23\nhow do I register a service and call it from a map function?\n")
    assert out.returncode == 0, out.stderr
    first, second = [json.loads(line) for line in out.stdout.splitlines()]
    assert first["intent"] == "SYSTEM_OPERATION" and "17*23 = 391" in first["text"]
    assert first["evidence"]["pieces"][0]["kind"] == "tool"
    assert second["sources"] and any(s["domain"] == "examples" for s in second["sources"])
    assert second["evidence"]["pieces"] and second["text"].startswith("[1] ")
    for record in (first, second):
        assert {"text", "intent", "sources", "timings", "evidence", "synthesis", "dropped"} <= set(record)
        assert record["timings"]["intent_router"] >= 0
    assert first["session_id"] != second["session_id"]  # a new session per line
    assert "warming up" in out.stderr  # before the first question, not during its answer
