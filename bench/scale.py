"""Scale-out: turns/minute and time-to-first-token for K concurrent chat sessions, on the
local engine and on Ray with 1 and 2 LLM workers, in one process and one run.

Every variant runs the real Studio pipeline (llama.cpp SmolLM2, embeddings, SQLite memory)
on the same questions; only the engine changes. On Ray the LLM operator is placed in the
``llm`` actor pool, each worker holding its own model; everything else stays in the
driver. Each llama.cpp instance gets ``--threads`` threads (default 1), so "2 workers"
means two generations in parallel on two cores: what the pool adds, not more threads.

    .venv/bin/python bench/scale.py [--sessions 4] [--turns 2] [--max-tokens 32]

Results go to bench/results/scale.json. Ratios are against the local engine of the same
run; on a shared 2-core machine absolute numbers move with the neighbours' load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAY_agent_register_timeout_ms", "120000")
os.environ.setdefault("RAY_raylet_start_wait_time_s", "60")

QUESTIONS = [
    "hello, who are you?",
    "what is a pipeline operator?",
    "give me one tip for writing tests",
    "what does a token budget guard do?",
    "say something about streaming",
    "how do sessions keep their order?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def one_session(pipe: Any, sid: str, turns: int, offset: int) -> list[dict[str, float]]:
    from studio_nb.messages import Response, TextDelta

    out = []
    for t in range(turns):
        question = QUESTIONS[(offset + t) % len(QUESTIONS)]
        t0 = time.perf_counter()
        ttft = None
        tokens = 0
        async for ev in pipe.astream(question, session_id=sid, events=False):
            if isinstance(ev, TextDelta) and ev.content and ttft is None:
                ttft = time.perf_counter() - t0
            elif isinstance(ev, Response):
                tokens = ev.usage.completion_tokens
        out.append({"ttft_s": ttft if ttft is not None else float("nan"), "total_s": time.perf_counter() - t0, "tokens": tokens})
    return out


async def measure(pipe: Any, label: str, sessions: int, turns: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    per_session = await asyncio.gather(
        *(one_session(pipe, f"{label}-s{i}", turns, i) for i in range(sessions))
    )
    wall = time.perf_counter() - t0
    rows = [r for rs in per_session for r in rs]
    ttfts = [r["ttft_s"] for r in rows if r["ttft_s"] == r["ttft_s"]]
    return {
        "engine": label,
        "turns": len(rows),
        "wall_s": round(wall, 2),
        "turns_per_min": round(len(rows) / wall * 60, 2),
        "ttft_p50_s": round(percentile(ttfts, 0.5), 3),
        "ttft_p95_s": round(percentile(ttfts, 0.95), 3),
        "tokens_per_s": round(sum(r["tokens"] for r in rows) / wall, 2),
    }


def build(data_dir: str, max_tokens: int, threads: int) -> Any:
    from studio_nb.studio import create_studio_pipeline

    return create_studio_pipeline(
        data_dir=data_dir,
        max_tokens=max_tokens,
        bundled_docs=False,
        intent_mode="keyword",
        llm={"backend": "llama_cpp", "n_ctx": 2048, "seed": 0, "n_threads": threads},
    )


def start_ray() -> None:
    import ray

    from studio_nb.kernel.ray_startup import start_with_retries

    # Ray's agent can miss its start-up deadline on a loaded machine (agent_port_fallback)
    start_with_retries(
        lambda: ray.init(
            num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2, namespace="studio_nb_bench"
        ),
        ray.shutdown,
        attempts=3,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=4, help="concurrent sessions K")
    ap.add_argument("--turns", type=int, default=2, help="turns per session")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads per model instance")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "scale.json"))
    args = ap.parse_args()

    import ray

    from studio_nb.kernel.ray_engine import RayEngine

    data_dir = tempfile.mkdtemp(prefix="studio_scale_")
    pipe = build(data_dir, args.max_tokens, args.threads)
    print("warming up the local pipeline (models load once) ...", flush=True)
    pipe.warm_up()
    results = []
    asyncio.run(one_session(pipe, "warm", 1, 0))  # first-call costs (KV cache, threads) out of the timings
    results.append(asyncio.run(measure(pipe, "local", args.sessions, args.turns)))
    print(results[-1], flush=True)

    print("starting Ray ...", flush=True)
    t0 = time.perf_counter()
    start_ray()
    ray_start_s = time.perf_counter() - t0
    for workers in (1, 2):
        engine = RayEngine(
            namespace=f"bench_{workers}",
            placement={"llm_inference": "pool:llm"},
            pools={"llm": {"size": workers, "num_cpus": 1, "max_concurrency": 1}},
        )
        pipe.pipeline.engine = engine
        t0 = time.perf_counter()
        engine.warm_up(pipe.pipeline)  # every worker loads its own model before timing
        warm_s = time.perf_counter() - t0
        asyncio.run(one_session(pipe, f"warm{workers}", 1, 0))
        row = asyncio.run(measure(pipe, f"ray_{workers}_llm_worker{'s' if workers > 1 else ''}", args.sessions, args.turns))
        row["workers_warm_up_s"] = round(warm_s, 1)
        results.append(row)
        print(row, flush=True)
        engine.shutdown()
    ray.shutdown()
    pipe.close()

    base = results[0]["turns_per_min"]
    for row in results:
        row["throughput_vs_local"] = round(row["turns_per_min"] / base, 2) if base else None
    report = {
        "sessions": args.sessions,
        "turns_per_session": args.turns,
        "max_tokens": args.max_tokens,
        "llama_threads_per_model": args.threads,
        "cpus": os.cpu_count(),
        "load_avg_at_end": os.getloadavg()[0],
        "ray_start_s": round(ray_start_s, 1),
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'engine':<24}{'turns/min':>10}{'vs local':>9}{'TTFT p50':>10}{'TTFT p95':>10}{'tok/s':>8}")
    for r in results:
        print(
            f"{r['engine']:<24}{r['turns_per_min']:>10}{r['throughput_vs_local']:>9}"
            f"{r['ttft_p50_s']:>10}{r['ttft_p95_s']:>10}{r['tokens_per_s']:>8}"
        )
    print(f"(written to {args.out})")


if __name__ == "__main__":
    main()
