"""What does running the model in a process of its own cost? In-process vs model process, same run.

Both sides load the same GGUF with the same settings (n_ctx, n_threads, n_batch, seed):

- ``inline``: ``LlamaCppClient.astream_chat``, the model in this process (``isolation: inline``);
- ``process``: ``ManagedModelClient.astream_chat``, the model in the user's model process,
  reached over its private Unix socket (``isolation: process``, the default).

The runs are interleaved, the order alternating run by run, so load on this shared
machine hits both alike, and each TTFT is compared with its neighbour (paired
differences). A short pause (``--pause-s``) comes before each run, as before a question: it
lets the other side's llama.cpp threads stop spinning, which would otherwise take a core
from whichever side runs next. Two blocks:

- ``same``: the same question every run. After the first, both KV caches hold all of the
  prompt but its last token, so TTFT is little more than the way to the model and back:
  where isolation's cost shows, undiluted;
- ``new``: a new question every run (the user message misses the KV cache), for context.

TTFT = call -> first text delta; decode rate = (deltas - 1) / (last delta - first delta).
Also timed: loading the model in-process vs starting a model process (what the first
question after a crash waits for). Goals (issue #11): TTFT overhead <= +5 ms, decode rate
>= 0.97 x in-process. Writes bench/results/isolation.json (bench/figures.py: one figure per goal,
the runs behind them under "runs").

    .venv/bin/python bench/isolation.py [--runs 20] [--max-tokens 64] [--n-threads N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path
from time import perf_counter

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio_nb.services.inference import LlamaCppClient, ManagedModelClient  # noqa: E402
from studio_nb.services.inference.llama_local import default_threads  # noqa: E402

SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer at length."}
TTFT_GOAL_MS = 5.0
DECODE_GOAL = 0.97


def question(block: str, i: int) -> list[dict]:
    n = 0 if block == "same" else i
    return [SYSTEM, {"role": "user", "content": f"Count from {n + 1} to {n + 300}, separated by commas."}]


async def one_run(client, messages: list[dict], max_tokens: int) -> dict:
    stamps = []
    start = perf_counter()
    async for delta in client.astream_chat(messages, max_tokens=max_tokens):
        if delta.text:
            stamps.append(perf_counter())
    n = len(stamps)
    return {
        "deltas": n,
        "ttft_ms": (stamps[0] - start) * 1000,
        "decode_tok_s": (n - 1) / (stamps[-1] - stamps[0]) if n > 1 else float("nan"),
    }


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) >= 2 else values[0]


def summarize(runs: dict[str, list[dict]]) -> dict:
    inl, proc = runs["inline"], runs["process"]
    out: dict = {"runs": len(inl)}
    for side, rs in runs.items():
        ttft = [r["ttft_ms"] for r in rs]
        rate = [r["decode_tok_s"] for r in rs]
        out[side] = {"ttft_ms_median": statistics.median(ttft), "ttft_ms_p90": p90(ttft),
                     "decode_tok_s_median": statistics.median(rate), "decode_tok_s_p90": p90(rate),
                     "deltas": statistics.median(r["deltas"] for r in rs)}  # fmt: skip
    out["ttft_overhead_ms_paired_median"] = statistics.median(p["ttft_ms"] - i["ttft_ms"] for i, p in zip(inl, proc))
    out["ttft_overhead_ms_of_medians"] = out["process"]["ttft_ms_median"] - out["inline"]["ttft_ms_median"]
    out["decode_ratio_paired_median"] = statistics.median(
        p["decode_tok_s"] / i["decode_tok_s"] for i, p in zip(inl, proc)
    )
    out["decode_ratio_of_medians"] = out["process"]["decode_tok_s_median"] / out["inline"]["decode_tok_s_median"]
    return out


def time_starts(args: argparse.Namespace, tmp: Path, n: int = 3) -> dict:
    """Loading in-process vs starting a model process (a new data dir each time: a new process)."""
    load, start = [], []
    for i in range(n):
        t = perf_counter()
        inline = LlamaCppClient(n_threads=args.n_threads, n_ctx=args.n_ctx)
        inline.warm_up()
        load.append(perf_counter() - t)
        inline.close()
        t = perf_counter()
        managed = ManagedModelClient(n_threads=args.n_threads, n_ctx=args.n_ctx, data_dir=str(tmp / f"start-{i}"))
        managed.warm_up()
        start.append(perf_counter() - t)
        managed.close()
    return {"inline_load_s_median": statistics.median(load), "process_start_s_median": statistics.median(start)}


async def bench(args: argparse.Namespace, tmp: Path) -> dict:
    clients = {
        "inline": LlamaCppClient(n_threads=args.n_threads, n_ctx=args.n_ctx),
        "process": ManagedModelClient(n_threads=args.n_threads, n_ctx=args.n_ctx, data_dir=str(tmp / "data")),
    }
    for client in clients.values():
        await asyncio.to_thread(client.warm_up)
        await one_run(client, question("new", -1), 8)  # first decode allocates buffers
    blocks = {}
    for block in ("same", "new"):
        runs: dict[str, list[dict]] = {"inline": [], "process": []}
        for i in range(args.runs + 1):
            order = ("inline", "process") if i % 2 == 0 else ("process", "inline")
            for side in order:
                await asyncio.sleep(args.pause_s)
                res = await one_run(clients[side], question(block, i), args.max_tokens)
                if i > 0 or block == "new":  # "same" run 0 fills the KV cache with the prompt
                    runs[side].append(res)
        blocks[block] = summarize(runs) | {"per_run": runs}
    for client in clients.values():
        client.close()
    return blocks


def entries(res: dict) -> list[dict]:
    """The two figures ``make bench`` shows (bench/figures.py), each with the details behind it."""
    from figures import figure

    same, new = res["blocks"]["same"], res["blocks"]["new"]
    ratio = statistics.median([same["decode_ratio_paired_median"], new["decode_ratio_paired_median"]])
    ttft = figure(
        "isolation_ttft_overhead", same["ttft_overhead_ms_paired_median"], "ms",
        goal=f"<= {TTFT_GOAL_MS:g}",
        note=f"model process vs in-process, same prompt, median of {same['runs']} paired differences "
        f"(in-process TTFT {same['inline']['ttft_ms_median']:.1f} ms); new question each time: "
        f"{new['ttft_overhead_ms_paired_median']:+.2f} ms",
    )
    decode = figure(
        "isolation_decode_ratio", ratio, "x", goal=f">= {DECODE_GOAL}",
        note=f"model process / in-process decode rate, median of paired ratios over {same['runs'] + new['runs']} "
        f"runs (in-process {same['inline']['decode_tok_s_median']:.1f} tok/s)",
    )
    ttft["details"] = {"of_medians_ms": round(same["ttft_overhead_ms_of_medians"], 2),
                       "inline_ttft_ms": _r(same["inline"]), "process_ttft_ms": _r(same["process"])}
    return [ttft, decode]


def _r(side: dict) -> dict:
    return {k: round(v, 2) for k, v in side.items()}


def report(res: dict, out: list[dict]) -> None:
    print(f"load average before/after: {res['load_before']} / {res['load_after']} on {os.cpu_count()} CPUs; "
          f"n_threads={res['n_threads']}, max_tokens={res['max_tokens']}, pause {res['pause_s']} s")  # fmt: skip
    print(f"{'block':<6} {'side':<8} {'TTFT med':>9} {'TTFT p90':>9} {'tok/s med':>10} {'tok/s p90':>10} {'deltas':>7}")
    for block, s in res["blocks"].items():
        for side in ("inline", "process"):
            r = s[side]
            print(f"{block:<6} {side:<8} {r['ttft_ms_median']:>9.1f} {r['ttft_ms_p90']:>9.1f} "
                  f"{r['decode_tok_s_median']:>10.1f} {r['decode_tok_s_p90']:>10.1f} {r['deltas']:>7.0f}")  # fmt: skip
        print(f"{block:<6} TTFT overhead {s['ttft_overhead_ms_paired_median']:+.2f} ms (paired median; of medians "
              f"{s['ttft_overhead_ms_of_medians']:+.2f}), decode ratio {s['decode_ratio_paired_median']:.3f} "
              f"(paired; of medians {s['decode_ratio_of_medians']:.3f}) over {s['runs']} runs each")  # fmt: skip
    st = res["starts"]
    print(f"start: in-process load {st['inline_load_s_median']:.2f} s, model process start "
          f"{st['process_start_s_median']:.2f} s (spawn + imports + load; medians of 3)")
    for e in out:
        print(f"goal {e['name']}: {e['value']:g} {e['unit']} vs {e['goal']}: {'met' if e['met'] else 'NOT met'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20, help="measured runs per side and block")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--n-threads", type=int, default=default_threads(), help="default: the project's default")
    ap.add_argument("--n-ctx", type=int, default=2048)
    ap.add_argument("--pause-s", type=float, default=0.25, help="pause before each run")
    args = ap.parse_args()
    res = {"n_threads": args.n_threads, "max_tokens": args.max_tokens, "pause_s": args.pause_s,
           "load_before": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="studio-isolation-") as tmp:
        res["blocks"] = asyncio.run(bench(args, Path(tmp)))
        res["starts"] = time_starts(args, Path(tmp))
    res["load_after"] = [round(x, 2) for x in os.getloadavg()]
    out = entries(res)
    report(res, out)
    from figures import save

    save("isolation", out, {"runs": res})


if __name__ == "__main__":
    main()
