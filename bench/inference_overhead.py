"""What does LlamaCppClient cost on top of llama-cpp-python itself?

Compares, in one process, interleaved run by run (so machine load hits both alike):

- ``client``: ``LlamaCppClient.astream_chat`` (worker thread + asyncio queue + stop hook +
  last-prompt-token split + token accounting);
- ``direct``: a stock ``llama_cpp.Llama`` iterating ``create_chat_completion(stream=True)``
  on the main thread;
- ``direct_thread``: the same loop in a fresh thread, as the client runs it. On an
  oversubscribed machine llama.cpp's OpenMP team is much slower on the main thread than
  on a fresh one, so this is the fair baseline for the client's own overhead.

Each path has its own warm model; every run asks a new question behind the same system
prompt, so all get the same KV-cache prefix reuse. Reported: load time, time to first
token (TTFT), decode rate (tokens after the first / time after the first) and end-to-end
rate, as medians over ``--runs`` runs, and the client/direct ratios.

    .venv/bin/python bench/inference_overhead.py --runs 5 --max-tokens 96
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import threading
import sys
from pathlib import Path
from time import perf_counter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio_nb.services.inference import LlamaCppClient  # noqa: E402
from studio_nb.services.models import default_chat_model_path  # noqa: E402

SYSTEM = {"role": "system", "content": "You are a helpful assistant. Answer at length, listing many items."}


from studio_nb.services.inference.llama_local import default_threads  # noqa: E402


def question(i: int) -> list[dict]:
    return [SYSTEM, {"role": "user", "content": f"Run {i}: count from 1 to 300, separated by commas."}]


def rates(start: float, stamps: list[float]) -> dict:
    n = len(stamps)
    return {
        "tokens": n,
        "ttft_ms": (stamps[0] - start) * 1000,
        "decode_tok_s": (n - 1) / (stamps[-1] - stamps[0]) if n > 1 else float("nan"),
        "e2e_tok_s": n / (stamps[-1] - start),
    }


async def run_client(client: LlamaCppClient, messages, max_tokens: int) -> dict:
    stamps = []
    start = perf_counter()
    async for delta in client.astream_chat(messages, max_tokens=max_tokens):
        if delta.text:
            stamps.append(perf_counter())
    result = rates(start, stamps)
    result["tokens"] = client.last_generation.completion_tokens  # deltas may merge multibyte tokens
    return result


def run_direct(llama, messages, max_tokens: int) -> dict:
    stamps = []
    start = perf_counter()
    for chunk in llama.create_chat_completion(messages, max_tokens=max_tokens, temperature=0.0, stream=True):
        if chunk["choices"][0]["delta"].get("content"):
            stamps.append(perf_counter())
    return rates(start, stamps)


def run_direct_in_thread(llama, messages, max_tokens: int) -> dict:
    out: list[dict] = []
    worker = threading.Thread(target=lambda: out.append(run_direct(llama, messages, max_tokens)))
    worker.start()
    worker.join()
    return out[0]


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--n-threads", type=int, default=default_threads())
    parser.add_argument("--loads", type=int, default=3, help="model loads to time per path")
    args = parser.parse_args()

    from llama_cpp import Llama

    path = str(default_chat_model_path())
    load = {"client": [], "direct": []}
    for _ in range(args.loads):
        client = LlamaCppClient(n_threads=args.n_threads)
        client.warm_up()
        load["client"].append(client.load_time_s)
        client.close()
        start = perf_counter()
        llama = Llama(model_path=path, n_ctx=2048, n_threads=args.n_threads, n_threads_batch=args.n_threads,
                      n_batch=256, seed=0, verbose=False)  # fmt: skip
        load["direct"].append(perf_counter() - start)
        llama.close()

    def stock_llama():
        return Llama(model_path=path, n_ctx=2048, n_threads=args.n_threads, n_threads_batch=args.n_threads,
                     n_batch=256, seed=0, verbose=False)  # fmt: skip

    # one model per path, so each sees the same sequence of prompts (and KV-cache reuse)
    client = LlamaCppClient(n_threads=args.n_threads)
    client.warm_up()
    llama, llama_t = stock_llama(), stock_llama()
    paths = {
        "client": lambda m, n: asyncio.run(run_client(client, m, n)),
        "direct": lambda m, n: run_direct(llama, m, n),
        "direct_thread": lambda m, n: run_direct_in_thread(llama_t, m, n),
    }
    for run in paths.values():  # warm: the first decode allocates buffers
        run(question(-1), 8)
    results = {name: [] for name in paths}
    names = list(paths)
    for i in range(args.runs):
        for name in names[i % 3 :] + names[: i % 3]:  # rotate the order run by run
            results[name].append(paths[name](question(i), args.max_tokens))

    summary = {
        "n_threads": args.n_threads,
        "runs": args.runs,
        "max_tokens": args.max_tokens,
        "load_s_median": {k: statistics.median(v) for k, v in load.items()},
    }
    for name, runs in results.items():
        summary[name] = {key: round(median(runs, key), 2) for key in ("tokens", "ttft_ms", "decode_tok_s", "e2e_tok_s")}
    for base in ("direct", "direct_thread"):
        summary[f"ratio_client_over_{base}"] = {
            key: round(summary["client"][key] / summary[base][key], 3) for key in ("ttft_ms", "decode_tok_s", "e2e_tok_s")
        }
    summary["per_run"] = results
    print(json.dumps(summary, indent=2, default=lambda x: round(x, 2)))
    client.close()
    llama.close()
    llama_t.close()


if __name__ == "__main__":
    main()
