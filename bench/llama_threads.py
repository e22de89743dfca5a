"""How many llama.cpp threads: decode speed on an idle machine and beside one busy process.

llama.cpp's threads meet at a barrier after every layer, so when one of them loses its
core the others wait. This measures what that costs with the installed build and the
bundled SmolLM2: decode tok/s for 1 thread, the default (half the logical CPUs) and every
logical CPU, first with the machine to itself and then with one spinning process beside
it (a stand-in for the Jupyter server, the embedder or another user's model process).
Rounds are interleaved so that other load hits every setting alike; each cell is the
best round.

    .venv/bin/python bench/llama_threads.py [--rounds 3] [--tokens 96]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.figures import figure, save  # noqa: E402


def decode_tps(llm, prompt: list[int], tokens: int) -> float:
    """Tokens per second after the first one (the prompt is evaluated before the clock starts)."""
    llm.reset()
    n, start = 0, None
    for _ in llm.generate(prompt, temp=0.0):
        n += 1
        if n == 1:
            start = time.perf_counter()
        if n == tokens + 1:
            break
    return tokens / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=96)
    args = ap.parse_args()

    from llama_cpp import Llama

    from studio_nb.services.inference.llama_local import default_threads
    from studio_nb.services.models import default_chat_model_path

    cpus = os.cpu_count() or 2
    settings = sorted({1, default_threads(), cpus})
    models = {n: Llama(model_path=str(default_chat_model_path()), n_ctx=512, n_threads=n, seed=0, verbose=False)
              for n in settings}
    prompt = models[settings[0]].tokenize(b"Explain in a few sentences what a data pipeline is and why it helps.")
    best: dict[tuple[int, int], float] = {}
    for busy in (0, 1):
        spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
        try:
            time.sleep(0.3)
            for r in range(args.rounds):
                for n in settings:
                    tps = decode_tps(models[n], prompt, args.tokens)
                    best[(n, busy)] = max(best.get((n, busy), 0.0), tps)
                    print(f"busy={busy} round {r + 1} threads={n}: {tps:.1f} tok/s", file=sys.stderr, flush=True)
        finally:
            for p in spinners:
                p.kill()
                p.wait()

    print(f"| threads ({cpus} logical CPUs) | idle tok/s | beside 1 busy process tok/s |")
    print("|---:|---:|---:|")
    for n in settings:
        mark = " (default)" if n == default_threads() else ""
        print(f"| {n}{mark} | {best[(n, 0)]:.1f} | {best[(n, 1)]:.1f} |")
    d = default_threads()
    figures = [
        figure("decode_tps_default_threads_busy", best[(d, 1)], "tok/s", baseline=best[(cpus, 1)],
               note=f"{d} thread(s) vs all {cpus}, beside one busy process"),
        figure("decode_tps_default_threads_idle", best[(d, 0)], "tok/s", baseline=best[(cpus, 0)],
               note=f"{d} thread(s) vs all {cpus}, idle machine"),
    ]
    save("llama_threads", figures, {"best_tps": {f"threads={n} busy={b}": v for (n, b), v in best.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
