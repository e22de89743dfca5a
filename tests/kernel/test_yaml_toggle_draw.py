"""YAML round-trips, the registry and entry points, hot toggling, drawing, telemetry."""

from __future__ import annotations

import sys
import os
import textwrap

import pytest
import yaml

from studio_nb.errors import ConfigError, WiringError
from studio_nb.kernel import Branches, ParallelGroup, Pipeline, Policy, registry
from studio_nb.kernel.telemetry import OpenTelemetryExporter, PrometheusMetrics
from studio_nb.kernel.testing import Collect, Exclaim, Identity, Sleep, Upper

MUST_SHOW = """
from studio_nb.kernel import Operator, Pipeline
class Upper(Operator):
    def process(self, msg: str) -> str: return msg.upper()
class Exclaim(Operator):
    def process(self, msg: str) -> str: return msg + "!"
assert Upper()("hi") == "HI"
p = Pipeline("demo"); up, ex = Upper(), Exclaim()
p.add_source(up); p.connect(up, ex)
assert p.run("hi") == "HI!"
assert "<svg" in p.draw()._repr_svg_()
assert Pipeline.from_yaml(p.to_yaml()).run("a") == "A!"
print("must-show ok")
"""


def test_issue_must_show_snippet_runs_as_a_script(tmp_path):
    import subprocess

    script = tmp_path / "must_show.py"
    script.write_text(MUST_SHOW)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "must-show ok" in out.stdout


def _studio_like() -> Pipeline:
    p = Pipeline("rich")
    src = Identity(name="src")
    group = ParallelGroup(
        "ctx",
        [Sleep(ms=1, tag="m", name="memory"), Upper(name="rag", policy=Policy(optional=True, timeout_ms=500))],
        join=Collect(name="ctx_join"),
    )
    ex = Exclaim(policy=Policy(max_retries=2, backoff_ms=5))
    p.add_source(src)
    p.connect(src, group)
    p.connect(group, ex)
    return p


def test_yaml_round_trip_keeps_graph_params_policies_and_toggles():
    p = _studio_like()
    p.disable("memory")
    text = p.to_yaml()
    data = yaml.safe_load(text)
    assert data["source"] == "src"
    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["ctx"] == {"name": "ctx", "group": ["memory", "rag"], "join": "ctx_join"}
    assert nodes["memory"]["params"] == {"ms": 1, "tag": "m"} and nodes["memory"]["enabled"] is False
    assert nodes["rag"]["policy"] == {"optional": True, "timeout_ms": 500}
    q = Pipeline.from_yaml(text)
    assert q.to_yaml() == text
    assert q["exclaim"].policy.max_retries == 2
    assert q.run("a") == "rag=A!"
    q.enable("memory")
    assert q.run("a") == "memory=a,rag=A!"


def test_from_yaml_accepts_a_path(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(_studio_like().to_yaml())
    assert Pipeline.from_yaml(str(path)).run("b") == "memory=b,rag=B!"


def test_unknown_operator_and_bad_params_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown operator 'Nope'.*registered operators:.*Upper"):
        Pipeline.from_yaml("nodes: [{name: a, operator: Nope}]\nedges: []")
    with pytest.raises(ConfigError, match="bad params for Sleep"):
        Pipeline.from_yaml("nodes: [{name: a, operator: Sleep, params: {speed: 3}}]\nedges: []")
    with pytest.raises(ConfigError, match="unknown policy field"):
        Pipeline.from_yaml("nodes: [{name: a, operator: Upper, policy: {retries: 3}}]\nedges: []")


def test_import_path_names_resolve():
    cls = registry.get("studio_nb.kernel.testing:Upper")  # registered: found without importing
    assert cls is Upper
    assert registry.get("studio_nb.kernel.testing:Upper", imports=True) is Upper


def test_only_a_trusted_lookup_imports_and_only_operators_come_back(tmp_path, monkeypatch):
    (tmp_path / "planted_ops.py").write_text("import os\nos.environ['PLANTED_IMPORTED'] = '1'\n"
                                              "def not_an_operator(**kw):\n    return kw\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PLANTED_IMPORTED", raising=False)
    with pytest.raises(ConfigError, match="import paths are resolved only for a pipeline YAML"):
        registry.get("planted_ops:not_an_operator")
    assert "PLANTED_IMPORTED" not in os.environ  # data never imports a module
    for name in ("planted_ops:not_an_operator", "os:environ.update"):
        with pytest.raises(ConfigError, match="is not an Operator class"):
            registry.get(name, imports=True)
    with pytest.raises(ConfigError, match="must be a string"):
        registry.get(["Upper"])


def test_entry_point_operators_are_discovered(tmp_path, monkeypatch):
    pkg = tmp_path / "plugin_ops.py"
    pkg.write_text(
        textwrap.dedent(
            """
            from studio_nb.kernel import Operator
            class Reverse(Operator):
                def process(self, msg: str) -> str:
                    return msg[::-1]
            """
        )
    )
    dist = tmp_path / "plugin_ops-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: plugin-ops\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[studio_nb.operators]\nreverse_text = plugin_ops:Reverse\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    cls = registry.get("reverse_text")
    assert cls.__name__ == "Reverse" and cls()("abc") == "cba"


def test_hot_toggle_in_a_live_pipeline_without_rebuilding():
    p = _studio_like()
    assert p.run("x") == "memory=x,rag=X!"
    p.disable("rag")
    out = p.run("x")
    assert out == "memory=x!"
    p.enable("rag")
    assert p.run("x") == "memory=x,rag=X!"


def test_per_request_disabled_nodes_leave_other_requests_alone():
    """RequestContext.disabled: one request's A/B (a session's toggles), not the pipeline's."""
    p = _studio_like()
    assert p.run("x", disabled=frozenset({"rag"})) == "memory=x!"
    assert p.run("x") == "memory=x,rag=X!"  # the next request runs everything again
    assert all(n.enabled for n in p.nodes.values())  # nothing global changed
    assert p.run("x", disabled=frozenset({"exclaim"})) == "memory=x,rag=X"  # a chain node passes through
    p.check_toggle("rag", False)  # a branch may be switched off per request...
    with pytest.raises(WiringError, match="it is the source"):
        p.check_toggle("src", False)  # ...the source may not, under the same rules as set_enabled


def test_disabling_a_chain_operator_passes_input_through_when_types_allow():
    p = Pipeline("chain")
    a, b, c = Identity(name="a"), Upper(), Exclaim()
    p.add_source(a)
    p.connect(a, b)
    p.connect(b, c)
    p.disable("upper")
    assert p.run("x") == "x!"
    with pytest.raises(WiringError, match="it is the source"):
        p.disable("a")


def test_disabling_is_refused_when_downstream_cannot_take_the_input():
    from studio_nb.kernel.testing import Double, Length

    p = Pipeline("typed")
    a, b = Length(), Double()
    p.add_source(Identity(name="s"))
    p.connect("s", a)
    p.connect(a, b)
    with pytest.raises(WiringError, match="cannot disable 'length'"):
        p.disable("length")


def test_draw_svg_and_mermaid_show_nodes_groups_and_feedback():
    from tests.kernel.test_wiring import _loop_pipeline

    d = _studio_like().draw()
    assert d.svg.startswith("<svg") and d.svg.endswith("</svg>")
    for name in ("src", "memory", "rag", "ctx_join", "exclaim"):
        assert f'data-name="{name}"' in d.svg
    assert 'subgraph ctx ["ctx (parallel)"]' in d.mermaid
    loop = _loop_pipeline(2, 3).draw()
    assert 'check -. "feedback ≤3" .-> draft' in loop.mermaid
    assert "stroke-dasharray" in loop.svg
    bundle = _studio_like()._repr_mimebundle_()
    assert bundle["image/svg+xml"].startswith("<svg") and "Edges:" in bundle["text/plain"]


def test_graph_dict_has_layout_and_live_stats():
    p = _studio_like()
    p.run("x")
    g = p.graph()
    nodes = {n["name"]: n for n in g["nodes"]}
    assert nodes["rag"]["group"] == "ctx" and nodes["ctx"]["kind"] == "group"
    assert nodes["exclaim"]["stats"]["runs"] == 1
    # layers go down the page: the join's group sits between the source and exclaim
    assert nodes["src"]["box"]["y"] < nodes["ctx"]["box"]["y"] < nodes["exclaim"]["box"]["y"]


def test_repr_lists_nodes_and_edges():
    text = repr(_studio_like())
    assert "ctx: ParallelGroup[memory, rag] -> ctx_join" in text
    assert "src -> ctx (Any)" in text and "ctx -> exclaim (str)" in text


def test_prometheus_metrics_count_runs_and_durations():
    from prometheus_client import CollectorRegistry

    metrics = PrometheusMetrics(CollectorRegistry())
    p = _studio_like()
    p.subscribe(metrics)
    p.run("a")
    p.run("b")
    text = metrics.exposition()
    assert 'studio_nb_operator_runs_total{operator="exclaim",pipeline="rich",status="completed"} 2.0' in text
    assert 'studio_nb_operator_duration_seconds_count{operator="rag",pipeline="rich"} 2.0' in text
    assert 'studio_nb_operator_in_flight{operator="exclaim",pipeline="rich"} 0.0' in text


def test_opentelemetry_spans_per_operator():
    sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="the [otel] extra is part of the test install")
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = sdk.TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    p = _studio_like()
    unsubscribe = p.subscribe(OpenTelemetryExporter(provider))
    p.run("a", session_id="s9")
    unsubscribe()
    spans = memory.get_finished_spans()
    names = sorted(s.name for s in spans)
    assert names == sorted(f"rich.{n}" for n in ("src", "memory", "rag", "ctx_join", "ctx", "exclaim"))
    assert all(s.attributes["studio_nb.session_id"] == "s9" for s in spans)


def test_branches_record_access():
    b = Branches("in", results={"a": 1})
    assert b["a"] == 1 and b.get("zz", 5) == 5
