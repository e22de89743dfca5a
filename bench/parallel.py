"""Memory, RAG and tools as a ParallelGroup (the default graph) vs the same branches in series.

Both forms are built from the Studio YAML with the same configuration, so they share the
real services (one embedder, one knowledge index, one SQLite memory, one tool registry,
one model); only the ``context`` node differs:

- ``parallel``: the stock ``ParallelGroup`` [memory_loader, knowledge_rag, tool_executor]
  joined by ContextJoinOp;
- ``serial``: one ``SerialContext`` node that builds the same three operators and the same
  join and awaits them one after another, with the engine's group rules (skip_reason,
  optional branches become ``errors``), so the join gets an identical ``Branches`` record.

Before measuring, a subset of ../shared/data/sage_docs is ingested into a temporary data
dir (so retrieval embeds the query and searches a real index) and a session gets saved
turns beyond the memory window (so recall embeds the query and ranks older turns). The
message asks a SAGE question plus an arithmetic expression and the list of knowledge
bases, so all three branches do work; each run changes the expression, which also makes
each query new to the memory cache.

Measured, interleaved run by run with the order alternating:

1. up to the built prompt (user_input -> intent_router -> context -> prompt_builder ->
   token_budget; no LLM): total and context-node time, and each branch's own time;
2. end to end: time to first token of the whole Studio pipeline, parallel vs serial
   (a fresh session per run with the same saved turns and the same message, so the prompt
   and its KV cache are identical; the stream is closed after the first token).

Goal: parallel measurably faster than serial when the branches have real cost: the
context node's median serial/parallel ratio >= 1.10 and parallel faster in >= 2/3 of the
rounds. Branches that are CPU-bound (query embeddings for recall and retrieval) can only
overlap as far as free cores allow, so note the load average printed with the figures.

    .venv/bin/python bench/parallel.py [--rounds 30] [--e2e-rounds 4] [--docs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import importlib.resources
import json
import os
import shutil
import statistics
import sys
import tempfile
from contextlib import aclosing
from pathlib import Path
from time import perf_counter
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio_nb.config import substitute  # noqa: E402
from studio_nb.kernel import (  # noqa: E402
    Branches,
    Operator,
    Pipeline,
    RequestContext,
    StepEvent,
    current_request,
)
from studio_nb.kernel.registry import get as lookup  # noqa: E402
from studio_nb.messages import ContextEnrichedMessage, Evidence, RoutedMessage, TextDelta, UserMessage  # noqa: E402
from studio_nb.studio import StudioPipeline, create_studio_pipeline  # noqa: E402

DOCS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sage_docs"
BRANCHES = ("memory_loader", "knowledge_rag", "tool_executor")
SESSION = "bench-memory"
MIN_RATIO = 1.3  # serial/parallel time of the pre-LLM stage (question -> evidence) asked for
SAVED_TURNS = [
    ("What is SAGE?", "SAGE is a dataflow framework for building LLM pipelines."),
    ("SAGE 的 DataStream 是什么？", "DataStream 是 SAGE 中表示数据流的核心抽象，可以链式调用 map/filter/sink。"),
    ("How do I install SAGE?", "Run the quickstart script or pip install the packages you need."),
    ("What does LocalEnvironment do?", "It runs a SAGE pipeline in this process, handy for development."),
    ("RemoteEnvironment 有什么用？", "RemoteEnvironment 把作业提交到远程的 JobManager，在集群上运行。"),
    ("How are operators connected?", "Each transformation returns a new DataStream; calls chain up."),
    ("What is a sink function?", "A SinkFunction consumes the final records, e.g. writing files."),
    ("SAGE 支持批处理吗？", "支持，BatchFunction 产生有限数据流，结束后作业自动停止。"),
    ("Where is configuration kept?", "In YAML config files loaded by the environment at submit time."),
    ("How do services work in SAGE?", "Services are long-lived objects that functions call by name."),
]


#: for the end-to-end runs: a docs question (a tool request would be answered without the model)
E2E_QUESTION = "SAGE 的 LocalEnvironment 和 RemoteEnvironment 有什么区别？"


from studio_nb.services.inference.llama_local import default_threads  # noqa: E402


def question(i: int) -> str:
    """Asks the docs, the calculator and the domain list, so every branch works; differs per run."""
    return f"SAGE 的 LocalEnvironment 和 RemoteEnvironment 有什么区别？请计算 ({1234 + i}*5678+91)/7，并列出有哪些知识库"


class SerialContext(Operator):
    """The context group's branches and join, awaited one after another (the baseline)."""

    def __init__(self, branches: list[dict], join: dict) -> None:
        self.branch_ops = [lookup(b["operator"])(**b.get("params", {}), name=b["name"]) for b in branches]
        self.optional = {b["name"]: bool((b.get("policy") or {}).get("optional")) for b in branches}
        self.join_op = lookup(join["operator"])(**join.get("params", {}), name=join["name"])

    def bind(self, resources: Any) -> None:  # the inner operators share the pipeline's resources
        super().bind(resources)
        for op in (*self.branch_ops, self.join_op):
            op.bind(resources)

    def warm_up(self) -> None:
        for op in (*self.branch_ops, self.join_op):
            op.ensure_warm()

    async def process(self, msg: RoutedMessage) -> ContextEnrichedMessage:
        ctx = current_request()
        rid = ctx.request_id if ctx else None
        result = Branches(msg)
        for op in self.branch_ops:
            reason = op.skip_reason(msg)
            if reason is not None:
                result.skipped[op.name] = reason
                continue
            try:
                result.results[op.name] = await op.invoke(msg, None, rid)
            except Exception as exc:
                if not self.optional[op.name]:
                    raise
                result.errors[op.name] = f"{type(exc).__name__}: {exc}"
        return await self.join_op.invoke(result, None, rid)


# ------------------------------------------------------------------------ building
def studio_graph(cfg: dict[str, Any]) -> dict[str, Any]:
    text = (importlib.resources.files("studio_nb") / "pipelines" / "studio.yaml").read_text(encoding="utf-8")
    import yaml

    return yaml.safe_load(substitute(text, cfg))


def serialised(graph: dict[str, Any]) -> dict[str, Any]:
    """The same graph with the ``context`` group replaced by one SerialContext node."""
    g = copy.deepcopy(graph)
    nodes = {n["name"]: n for n in g["nodes"]}
    group = nodes["context"]
    branches = [nodes[b] for b in group["group"]]
    join = nodes[group["join"]]
    drop = set(group["group"]) | {group["join"]}
    g["nodes"] = [
        {"name": "context", "operator": "SerialContext", "params": {"branches": branches, "join": join}}
        if n["name"] == "context" else n
        for n in g["nodes"] if n["name"] not in drop
    ]  # fmt: skip
    g["name"] = g["name"] + "_serial"
    return g


def until_prompt(graph: dict[str, Any]) -> dict[str, Any]:
    """Only the nodes up to the evidence, the first thing the user sees (no LLM, nothing saved).

    The evidence operator ends this graph: for this message (a tool request among others)
    it answers directly, and either way what follows it is prompt text and the model."""
    g = copy.deepcopy(graph)
    keep = ["user_input", "intent_router", "context", "evidence"]
    group = next(n for n in g["nodes"] if n["name"] == "context")
    members = set(group.get("group", [])) | ({group["join"]} if "join" in group else set())
    g["nodes"] = [n for n in g["nodes"] if n["name"] in keep or n["name"] in members]
    g["edges"] = [e for e in g["edges"] if e["from"] in keep and e["to"] in keep and not e.get("feedback")]
    g["name"] = g["name"] + "_prompt"
    return g


def branch_ops(p: Pipeline) -> dict[str, Operator]:
    ctx = p["context"]
    if isinstance(ctx, SerialContext):
        return {op.name: op for op in ctx.branch_ops}
    return {name: p[name] for name in BRANCHES}


# ------------------------------------------------------------------------ setup
def ingest_subset(pipe: StudioPipeline, n_files: int, tmp: Path) -> int:
    """Copy the first ``n_files`` SAGE kernel guide pages aside and ingest them (also bench/ttft.py)."""
    src = sorted((DOCS / "guides" / "packages" / "sage-kernel").rglob("*.md"))[:n_files]
    dst = tmp / "docs"
    for f in src:
        target = dst / f.relative_to(DOCS)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, target)
    if src:
        pipe.ingest(dst, "sage_docs", progress=False)
    return len(src)


def write_result(name: str, res: dict) -> None:
    """bench/results/<name>.json (git-ignored)."""
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    text = json.dumps(res, indent=2, ensure_ascii=False, default=lambda x: round(x, 3))
    (out / f"{name}.json").write_text(text, encoding="utf-8")


def save_turns(pipe: StudioPipeline, session: str) -> None:
    from studio_nb.services.memory import StoredTurn

    for q, a in SAVED_TURNS:
        pipe.memory.save_turn(StoredTurn.new(session, q, a, intent="KNOWLEDGE_QUERY"))


# ------------------------------------------------------------------------ running
async def until_prompt_run(p: Pipeline, text: str, i: int) -> dict:
    rid = f"par-bench-{i}-{p.name}"
    msg = UserMessage(text, session_id=SESSION, request_id=rid, user="local")
    ctx = RequestContext(request_id=rid, session_id=SESSION, user="local")
    start = perf_counter()
    await p.arun(msg, context=ctx)
    total = (perf_counter() - start) * 1000
    out = {"total_ms": total, "context_ms": ctx.timings.get("context", float("nan"))}
    for name, op in branch_ops(p).items():
        rec = op.last[-1] if op.last else None
        out[name + "_ms"] = rec.duration_ms if rec is not None and rec.request_id == rid else 0.0
    out["degraded"] = dict(ctx.degraded)
    return out


async def ttft_run(pipe: StudioPipeline, text: str, session: str) -> dict:
    """Time to the first content (the evidence) and to the first token of one turn."""
    out = {"first_content_ms": float("nan"), "ttft_ms": float("nan"), "context_ms": float("nan")}
    start = perf_counter()
    async with aclosing(pipe.astream(text, session_id=session, events=True)) as stream:
        async for item in stream:
            if isinstance(item, StepEvent) and item.operator == "context" and item.duration_ms is not None:
                out["context_ms"] = item.duration_ms
            elif isinstance(item, Evidence) and out["first_content_ms"] != out["first_content_ms"]:
                out["first_content_ms"] = (perf_counter() - start) * 1000
            elif isinstance(item, TextDelta) and item.content:
                out["ttft_ms"] = (perf_counter() - start) * 1000
                break
    return out


def med(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return round(statistics.median(values), 2) if values else float("nan")


async def bench(args: argparse.Namespace, tmp: Path) -> dict:
    # in-process: this bench reads the stats of generations it stops (client.last_generation),
    # which a model process does not send back; the process's own cost: bench/isolation.py
    llm = {"backend": "llama_cpp", "isolation": "inline", "n_ctx": 2048, "seed": 0, "n_threads": args.n_threads}
    pipe = create_studio_pipeline(data_dir=str(tmp / "data"), llm=llm, workspace=str(tmp), bundled_docs=False,
                                  max_tokens=16)  # fmt: skip
    t0 = perf_counter()
    await asyncio.to_thread(pipe.warm_up)
    n_files = await asyncio.to_thread(ingest_subset, pipe, args.docs, tmp)
    sessions = [SESSION] + [f"bench-e2e-{i}" for i in range(2 * (args.e2e_rounds + 1))]
    for s in sessions:
        await asyncio.to_thread(save_turns, pipe, s)
    setup_s = perf_counter() - t0

    graph = studio_graph(pipe.config)
    shared = lambda: pipe.resources  # noqa: E731  every form uses the same models, index and memory
    forms = {
        "parallel": Pipeline.from_dict(until_prompt(graph)).use_resources(shared),
        "serial": Pipeline.from_dict(until_prompt(serialised(graph))).use_resources(shared),
    }
    for p in forms.values():
        await asyncio.to_thread(p.warm_up)
    serial_pipe = Pipeline.from_dict(serialised(graph)).use_resources(shared)
    e2e = {"parallel": pipe, "serial": StudioPipeline(serial_pipe, pipe.config)}
    await asyncio.to_thread(e2e["serial"].pipeline.warm_up)

    embedder = pipe.resources.embedder
    runs: dict[str, list[dict]] = {name: [] for name in forms}
    embed_ms: list[float] = []
    names = list(forms)
    for i in range(args.rounds + 1):  # round 0 warms both forms up
        for name in (names if i % 2 == 0 else names[::-1]):
            res = await until_prompt_run(forms[name], question(1000 * i + (name == "serial")), i)
            if i > 0:
                runs[name].append(res)
        t = perf_counter()  # one query embedding alone (the router's; recall and retrieval reuse it)
        await asyncio.to_thread(embedder.encode, [question(1000 * i + 2)])
        if i > 0:
            embed_ms.append((perf_counter() - t) * 1000)
    selected = select_tool_names(forms["parallel"])

    ttft: dict[str, list[dict]] = {name: [] for name in e2e}
    n = 0
    for i in range(args.e2e_rounds + 1):
        for name in (names if i % 2 == 0 else names[::-1]):
            # the same message each time: the prompt is identical (same saved turns, sources and
            # tool results), so after the warm-up both forms reuse the whole KV cache and TTFT
            # is the request path plus one decode step; fresh sessions keep the memory cache cold
            value = await ttft_run(e2e[name], E2E_QUESTION, sessions[1 + n])
            n += 1
            if i > 0:
                ttft[name].append(value)

    summary: dict[str, Any] = {
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "cpu_count": os.cpu_count(),
        "n_threads": args.n_threads,
        "rounds": args.rounds,
        "e2e_rounds": args.e2e_rounds,
        "docs_ingested": n_files,
        "saved_turns_per_session": len(SAVED_TURNS),
        "setup_s": round(setup_s, 1),
        "message": question(0),
        "intent": forms["parallel"]["intent_router"].last[-1].output.intent,
        "tools_called": selected,
        "one_query_embedding_ms": med(embed_ms),
    }
    for name, rs in runs.items():
        keys = ("total_ms", "context_ms", *(b + "_ms" for b in BRANCHES))
        summary[name] = {k: med([r[k] for r in rs]) for k in keys}
        summary[name]["degraded_runs"] = sum(1 for r in rs if r["degraded"])
    par, ser = summary["parallel"], summary["serial"]
    summary["branch_sum_ms_parallel"] = round(sum(par[b + "_ms"] for b in BRANCHES), 2)
    summary["context_ratio_serial_over_parallel"] = round(ser["context_ms"] / par["context_ms"], 3)
    summary["total_ratio_serial_over_parallel"] = round(ser["total_ms"] / par["total_ms"], 3)
    summary["context_saved_ms"] = round(ser["context_ms"] - par["context_ms"], 2)
    summary["e2e_ttft_ms"] = {name: med([r["ttft_ms"] for r in v]) for name, v in ttft.items()}
    summary["e2e_context_ms"] = {name: med([r["context_ms"] for r in v]) for name, v in ttft.items()}
    summary["e2e_first_content_ms"] = {name: med([r["first_content_ms"] for r in v]) for name, v in ttft.items()}
    e2e_ms = summary["e2e_ttft_ms"]
    summary["e2e_ttft_saved_ms"] = round(e2e_ms["serial"] - e2e_ms["parallel"], 2)
    # "measurably": the parallel median saves >= 10% of the serial context time and
    # parallel wins at least two thirds of the rounds pairwise
    wins = sum(1 for a, b in zip(runs["parallel"], runs["serial"]) if a["context_ms"] < b["context_ms"])
    summary["parallel_faster_in_rounds"] = f"{wins}/{len(runs['parallel'])}"
    summary["goal_met"] = summary["total_ratio_serial_over_parallel"] >= MIN_RATIO
    from figures import figure

    summary["figures"] = [
        figure("parallel_speedup", ser["total_ms"], "x", baseline=par["total_ms"], goal=f"ratio >= {MIN_RATIO}",
               note="pre-LLM stage (question -> evidence), serial chain / ParallelGroup, medians"),
        figure("parallel_context_speedup", ser["context_ms"], "x", baseline=par["context_ms"],
               note="the context node alone (memory, retrieval, tools), serial / parallel"),
        figure("time_to_evidence", par["total_ms"], "ms", note="warm, question -> evidence, parallel form"),
    ]
    summary["per_run"] = {"until_prompt": runs, "e2e_ttft_ms": ttft}
    for p in forms.values():
        p.close()
    e2e["serial"].close()
    pipe.close()
    return summary


def select_tool_names(p: Pipeline) -> list[str]:
    rec = p["tool_executor"].last[-1] if p["tool_executor"].last else None
    return [t.name for t in rec.output] if rec is not None and rec.ok else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30, help="measured rounds up to the prompt (+1 warm-up)")
    ap.add_argument("--e2e-rounds", type=int, default=4, help="measured end-to-end TTFT rounds (+1 warm-up)")
    ap.add_argument("--docs", type=int, default=10, help="SAGE doc pages to ingest for retrieval")
    ap.add_argument("--n-threads", type=int, default=default_threads())
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="studio-parallel-") as tmp:
        res = asyncio.run(bench(args, Path(tmp)))

    print(f"load average (1/5/15 min): {res['load_avg_1_5_15']} on {res['cpu_count']} CPUs; "
          f"setup {res['setup_s']} s (warm-up, {res['docs_ingested']} doc pages, "
          f"{res['saved_turns_per_session']} saved turns per session)")  # fmt: skip
    print(f"message: {res['message']!r} -> intent {res['intent']}, tools {res['tools_called']}")
    cols = ("total_ms", "context_ms", *(b + "_ms" for b in BRANCHES), "degraded_runs")
    print(f"{'to evidence':<12} " + " ".join(f"{c:>18}" for c in cols))
    for name in ("parallel", "serial"):
        print(f"{name:<12} " + " ".join(f"{res[name][c]:>18}" for c in cols))
    print(f"sum of branch times (parallel form): {res['branch_sum_ms_parallel']} ms; one query embedding "
          f"alone: {res['one_query_embedding_ms']} ms (the shared Embedder runs one encode at a time)")
    print(f"context node serial/parallel = {res['context_ratio_serial_over_parallel']} "
          f"(saves {res['context_saved_ms']} ms); "
          f"whole prefix serial/parallel = {res['total_ratio_serial_over_parallel']}; "
          f"parallel faster in {res['parallel_faster_in_rounds']} rounds")  # fmt: skip
    print(f"end-to-end TTFT median (ms): {res['e2e_ttft_ms']} -> "
          f"parallel saves {res['e2e_ttft_saved_ms']} ms; context node there: {res['e2e_context_ms']} ms; "
          f"first content (evidence): {res['e2e_first_content_ms']} ms")
    print(f"goal: pre-LLM stage serial/parallel >= {MIN_RATIO} -> {res['total_ratio_serial_over_parallel']}: "
          f"{'met' if res['goal_met'] else 'NOT met'}")
    write_result("parallel", res)


if __name__ == "__main__":
    main()
