"""A snapshot is data a user may have been sent (issue #21, findings 1 and 10).

Each case resumes a tampered copy of a real paused turn's snapshot with ``pipe.resume`` in
a child process, the way a user would open a file someone shared, and checks what the
child could observe afterwards: files the payload would have written, environment
variables it would have set, modules it would have imported. Before the fix the first
three payloads ran (IPython executed the code, ``os.environ.update`` set LD_PRELOAD, a
module planted in the working directory was imported), a ``$ref`` cycle raised
RecursionError and a small fan-out document took minutes.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest

from studio_nb.debug import snapshot as snap
from studio_nb.errors import ConfigError

pytestmark = pytest.mark.slow

RESUME = """
import json, os, sys
from studio_nb.studio import create_studio_pipeline
pipe = create_studio_pipeline(data_dir=sys.argv[1], max_tokens=8, workspace=sys.argv[2])
try:
    pipe.resume(sys.argv[3])
    error = None
except Exception as exc:
    error = f"{type(exc).__name__}: {exc}"
print(json.dumps({"error": error, "LD_PRELOAD": os.environ.get("LD_PRELOAD"),
                  "planted_imported": "planted_ops" in sys.modules}))
"""


@pytest.fixture(scope="module")
def paused_doc(studio, tmp_path_factory):
    """A real snapshot: a turn paused before the model, then stopped."""
    session = "snapshot-safety"
    studio.breakpoint("llm_inference", session_id=session)
    try:
        turn = studio.ask("what is a ParallelGroup?", session_id=session)
        assert turn.paused_at == "llm_inference"
        doc = turn.snapshot()
        turn.stop()
    finally:
        studio.clear_breakpoints()
    return doc


def resume_in_child(doc, studio_dir, tmp_path):
    path = tmp_path / "shared.json"
    path.write_text(json.dumps(doc))
    (tmp_path / "planted_ops.py").write_text(
        f"open({str(tmp_path / 'imported.marker')!r}, 'w').write('imported')\n"
        "from studio_nb.kernel import Operator\n"
        "class Op(Operator):\n    def process(self, msg):\n        return msg\n")
    out = subprocess.run([sys.executable, "-c", RESUME, str(studio_dir / "data"), str(studio_dir), str(path)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def with_override(doc, operator, params, node="prompt_builder"):
    bad = copy.deepcopy(doc)
    bad["overrides"] = {node: {"operator": operator, "params": params}}
    return bad


def test_a_snapshot_that_names_code_runs_nothing(paused_doc, studio_dir, tmp_path):
    marker = tmp_path / "ran.marker"
    payloads = [
        ("IPython:start_ipython", {"argv": ["--quick", "-c", f"open({str(marker)!r}, 'w').write('ran')"]}),
        ("os:environ.update", {"LD_PRELOAD": str(tmp_path / "evil.so")}),
        ("planted_ops:Op", {}),
    ]
    for operator, params in payloads:
        result = resume_in_child(with_override(paused_doc, operator, params), studio_dir, tmp_path)
        assert result["error"] and "unknown operator" in result["error"] and operator in result["error"], result
        assert result["LD_PRELOAD"] is None and not result["planted_imported"], (operator, result)
    assert not marker.exists() and not (tmp_path / "imported.marker").exists()


def test_a_snapshot_sets_only_parameters_the_operator_declares(paused_doc, studio):
    ok = snap.check(with_override(paused_doc, "PromptBuilderOp", {"max_doc_chars": 200}), studio.pipeline)
    assert ok == {"prompt_builder": {"operator": "PromptBuilderOp", "params": {"max_doc_chars": 200}}}
    with pytest.raises(ConfigError, match="PromptBuilderOp has no parameter 'resources'.*it takes:.*max_doc_chars"):
        snap.check(with_override(paused_doc, "PromptBuilderOp", {"resources": {}}), studio.pipeline)
    with pytest.raises(ConfigError, match="not a node of this pipeline"):
        snap.check(with_override(paused_doc, "PromptBuilderOp", {}, node="shell"), studio.pipeline)
    with pytest.raises(ConfigError, match="must be plain JSON data"):
        snap.check(with_override(paused_doc, "PromptBuilderOp", {"max_doc_chars": object()}), studio.pipeline)
    with pytest.raises(ConfigError, match="'paused_at'.*not a node|not a node of this pipeline"):
        snap.check({**paused_doc, "paused_at": "nowhere"}, studio.pipeline)


def test_reference_cycles_and_fan_out_are_bounded(paused_doc, studio_dir, tmp_path):
    cyclic = copy.deepcopy(paused_doc)
    cyclic["pending"] = {"$ref": "/loop/a"}
    cyclic["loop"] = {"a": {"__type__": "LLMRequest", "messages": {"$ref": "/loop/a"}}}
    result = resume_in_child(cyclic, studio_dir, tmp_path)
    assert result["error"] and "points into itself" in result["error"], result

    # 8 levels of 12 references each: 12**8 decodes without sharing, a few hundred with it
    fan = copy.deepcopy(paused_doc)
    fan["fan"] = {f"l{i}": [{"$ref": f"/fan/l{i + 1}"}] * 12 for i in range(8)}
    fan["fan"]["l8"] = "leaf"
    fan["pending"] = {"$ref": "/fan/l0"}
    result = resume_in_child(fan, studio_dir, tmp_path)
    assert result["error"] and "takes LLMRequest, not list" in result["error"], result

    deep: dict = {"x": 1}
    for _ in range(400):
        deep = {"x": [deep]}
    nested = copy.deepcopy(paused_doc)
    nested["pending"] = deep
    result = resume_in_child(nested, studio_dir, tmp_path)
    assert result["error"] and "nests deeper than" in result["error"], result
