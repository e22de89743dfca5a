"""Decode and prefill speed of candidate llama-cpp-python builds, on this machine, in one run.

Each candidate is a built wheel (``name=path/to/llama_cpp_python-*.whl``). The wheels are
unpacked side by side and every measurement runs in its own child process, so a build
that uses instructions this CPU cannot run shows up as the signal that killed it
(``SIGILL``) instead of ending the benchmark. Rounds are interleaved (A B C A B C ...)
so that load from other processes hits every candidate alike; the table reports the
best round per candidate (the speed the build reaches when the machine lets it; on a
shared 2-core machine the median mostly measures the neighbours) with the median beside
it, and the ratio of the bests to the first candidate.

    .venv/bin/python bench/llama_builds.py avx2=wh/avx2/x.whl dl=wh/dl/y.whl [--rounds 3]

The model is the bundled SmolLM2-135M-Instruct Q4_1 GGUF, on the default thread count
(half the logical CPUs, as studio-nb runs it; see ``llama_threads.py``).
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, sys, time
from pathlib import Path
lib = Path(sys.argv[1]) / "llama_cpp" / "lib"
from studio_nb.services.inference.backends import load_cpu_backends
variant = load_cpu_backends(lib)
from llama_cpp import Llama
from studio_nb.services.inference.llama_local import default_threads
n = default_threads()
llm = Llama(model_path=sys.argv[2], n_ctx=1024, n_threads=n, n_threads_batch=n, n_batch=512, seed=0, verbose=False)
text = ("SAGE is a streaming dataflow framework. Operators are connected into pipelines that run on a "
        "local environment or on a Ray cluster. ") * 12
prompt = llm.tokenize(text.encode())[:256]
prefill = []
for _ in range(3):
    llm.reset(); t0 = time.perf_counter(); llm.eval(prompt); prefill.append(len(prompt) / (time.perf_counter() - t0))
llm.reset()
n, t_first = 0, None
t0 = time.perf_counter()
for tok in llm.generate(prompt[:32], temp=0.0):
    n += 1
    if n == 1:
        t_first = time.perf_counter()
    if n == 129:
        break
decode = 128 / (time.perf_counter() - t_first)
print(json.dumps({"prefill_tps": max(prefill), "decode_tps": decode, "variant": variant}))
"""


def model_path() -> str:
    from studio_nb.services.models import default_chat_model_path

    return str(default_chat_model_path())


def measure(site: Path, model: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(site), model],
        capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": f"{site}:{ROOT}", "PATH": "/usr/bin:/bin"},
    )
    if proc.returncode < 0:
        return {"crashed": signal.Signals(-proc.returncode).name}
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("wheels", nargs="+", help="name=path/to/wheel.whl")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "llama_builds.json")
    args = ap.parse_args()
    model = model_path()
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        sites = {}
        for spec in args.wheels:
            name, _, path = spec.partition("=")
            sites[name] = Path(tmp) / name
            zipfile.ZipFile(path).extractall(sites[name])
            for so in (sites[name] / "llama_cpp" / "lib").glob("*.so*"):
                so.chmod(0o755)
        for r in range(args.rounds):
            for name, site in sites.items():
                result = measure(site, model)
                runs.setdefault(name, []).append(result)
                print(f"round {r + 1} {name}: {result}", file=sys.stderr, flush=True)
    table, base = {}, None
    for name, results in runs.items():
        ok = [x for x in results if "decode_tps" in x]
        if not ok:
            table[name] = {"status": results[0].get("crashed") or results[0].get("error")}
            continue
        row = {
            "status": "ok",
            "variant": ok[0].get("variant"),
            "decode_tps": max(x["decode_tps"] for x in ok),
            "prefill_tps": max(x["prefill_tps"] for x in ok),
            "decode_median": statistics.median(x["decode_tps"] for x in ok),
            "prefill_median": statistics.median(x["prefill_tps"] for x in ok),
        }
        base = base or row
        row["decode_ratio"] = row["decode_tps"] / base["decode_tps"]
        row["prefill_ratio"] = row["prefill_tps"] / base["prefill_tps"]
        table[name] = row
    print("| build | status | CPU variant used | decode tok/s best (median) | prefill tok/s best (median) "
          "| decode × | prefill × |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name, row in table.items():
        if row["status"] != "ok":
            print(f"| {name} | {row['status']} | | | | | |")
        else:
            print(f"| {name} | ok | {row['variant'] or 'built in'} | {row['decode_tps']:.1f} ({row['decode_median']:.1f}) "
                  f"| {row['prefill_tps']:.0f} ({row['prefill_median']:.0f}) "
                  f"| {row['decode_ratio']:.2f} | {row['prefill_ratio']:.2f} |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rounds": runs, "table": table}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
