"""Kernel overhead: a 10-operator no-op pipeline vs the same 10 functions called directly.

Both run in this process on the same event loop, interleaved in rounds, and we report
medians. Per-hop overhead = (pipeline µs - direct µs) / 10. Goal: <= 25 µs per hop
(Haystack's published per-component overhead is about 60 µs).

    .venv/bin/python bench/kernel_overhead.py [--requests 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from studio_nb.kernel import Pipeline
from studio_nb.kernel.testing import Identity

HOPS = 10


def build() -> tuple[Pipeline, list]:
    p = Pipeline("noop10")
    ops = [Identity(name=f"op{i}") for i in range(HOPS)]
    p.add_source(ops[0])
    for a, b in zip(ops, ops[1:]):
        p.connect(a, b)
    p.validate()
    return p, [op.process for op in ops]


async def direct(funcs: list, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        x = i
        for f in funcs:
            x = f(x)
    return (time.perf_counter() - t0) / n * 1e6


async def pipeline_serial(p: Pipeline, n: int, sessions: bool) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        await p.arun(i, session_id="s" if sessions else None)
    return (time.perf_counter() - t0) / n * 1e6


async def pipeline_concurrent(p: Pipeline, n: int, sessions: int) -> float:
    """Requests/s with ``sessions`` concurrent sessions, each sending n/sessions turns."""
    per = max(1, n // sessions)

    async def session(s: int) -> None:
        for i in range(per):
            await p.arun(i, session_id=f"s{s}")

    t0 = time.perf_counter()
    await asyncio.gather(*(session(s) for s in range(sessions)))
    return per * sessions / (time.perf_counter() - t0)


async def main(requests: int, rounds: int) -> dict:
    p, funcs = build()
    await p.arun(0)  # warm the engine's per-node state
    d_us, p_us, ps_us, rps1, rps100 = [], [], [], [], []
    for _ in range(rounds):  # interleave so drift hits both sides alike
        d_us.append(await direct(funcs, requests))
        p_us.append(await pipeline_serial(p, requests, sessions=False))
        ps_us.append(await pipeline_serial(p, requests, sessions=True))
        rps1.append(await pipeline_concurrent(p, requests, 1))
        rps100.append(await pipeline_concurrent(p, requests, 100))
    d, pl, pls = statistics.median(d_us), statistics.median(p_us), statistics.median(ps_us)
    result = {
        "hops": HOPS,
        "requests_per_round": requests,
        "rounds": rounds,
        "direct_us_per_request": round(d, 2),
        "pipeline_us_per_request": round(pl, 2),
        "pipeline_with_session_us_per_request": round(pls, 2),
        "overhead_us_per_hop": round((pl - d) / HOPS, 2),
        "overhead_us_per_hop_with_session": round((pls - d) / HOPS, 2),
        "ratio_pipeline_vs_direct": round(pl / d, 1),
        "requests_per_s_1_session": round(statistics.median(rps1)),
        "requests_per_s_100_sessions": round(statistics.median(rps100)),
    }
    return result


def load_ext_ms(runs: int = 5) -> dict:
    """What ``%load_ext studio_nb`` adds to a fresh IPython shell (subprocesses, medians)."""
    import subprocess
    import sys

    code = ("import time; from IPython.core.interactiveshell import InteractiveShell; ip = InteractiveShell.instance(); "
            "t = time.perf_counter(); {} ; print((time.perf_counter() - t) * 1000)")
    load = code.format("ip.run_line_magic('load_ext', 'studio_nb')")
    base = code.format("pass")

    def run(src: str) -> float:
        out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])

    loads = sorted(run(load) for _ in range(runs))
    bases = sorted(run(base) for _ in range(runs))
    return {"load_ext_ms": round(loads[runs // 2] - bases[runs // 2], 2), "runs": runs}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    res = asyncio.run(main(args.requests, args.rounds))
    width = max(len(k) for k in res)
    for k, v in res.items():
        print(f"{k:<{width}}  {v}")
    print(f"goal: <= 25 us per hop -> {'met' if res['overhead_us_per_hop'] <= 25 else 'NOT met'}")
    from figures import figure, save

    res["load_ext_ms"] = load_ext_ms()
    print(f"%load_ext studio_nb: {res['load_ext_ms']['load_ext_ms']} ms on top of IPython itself")
    figures = [
        figure("kernel_hop_overhead", res["overhead_us_per_hop"], "us", goal="<= 25",
               note=f"{HOPS} no-op operators: {res['pipeline_us_per_request']} us per request vs "
               f"{res['direct_us_per_request']} us calling them directly"),
        figure("load_ext", res["load_ext_ms"]["load_ext_ms"], "ms",
               note="%load_ext studio_nb in a fresh IPython process, median of 5, minus IPython's own start"),
    ]
    save("kernel_overhead", figures, res)
