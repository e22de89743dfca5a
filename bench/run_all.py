"""``make bench``: every benchmark, one after another, then one table of all their figures.

Each benchmark is its own script (run it alone for its details) and writes
``bench/results/<name>.json`` with a ``figures`` list (``bench/figures.py``). This runs them
with settings sized to fit about 25 minutes on 2 cores, in an order where a failure in one
does not stop the others, and writes

- ``bench/results/summary.json``: every figure, ``{"name", "value", "unit", "baseline",
  "ratio", "goal", "met"}`` (plus the benchmark it came from and a note);
- ``bench/results/summary.md``: the same as a Markdown table (the README links it).

Not run here: ``llama_builds.py`` (it compares llama.cpp builds, which must be compiled
first, ~4 minutes each), ``scale.py`` and ``ray_ingest.py`` (start Ray clusters),
``ws_load.py`` (32 sockets) and ``lexical_engines.py`` (four lexical engines at 100k
chunks, ~10 minutes): run them by hand.

    .venv/bin/python bench/run_all.py [--only answers,ttft]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

#: (name, script arguments, seconds allowed); the JSON each writes is results/<name>.json
BENCHES = [
    ("kernel_overhead", ["--requests", "5000", "--rounds", "3"], 180),
    ("intent_eval", ["--no-llm", "--repeat", "1", "--out", str(RESULTS / "intent_eval.json")], 240),
    ("retrieval", ["--no-baseline", "--raw-share", "0.2"], 420),
    ("knowledge_scale", ["--sizes", "10000,100000"], 1500),
    ("parallel", ["--rounds", "12", "--e2e-rounds", "2", "--docs", "10"], 300),
    ("ttft", ["--rounds", "2"], 300),
    ("warm_up", ["--starts", "2", "--baseline-runtime", "torch"], 500),
    ("answers", ["--sets", "own,foreign,hanlp", "--split", "heldout", "--modes", "grounded"], 1500),
    ("grounding", [], 120),
    ("isolation", [], 300),
    ("llama_threads", ["--rounds", "2"], 300),
    ("under_load", ["--rounds", "3"], 1200),
    ("chat_member", ["--rounds", "3"], 300),
]


def run(name: str, args: list[str], budget: int) -> dict:
    script = HERE / f"{name}.py"
    if not script.exists():
        return {"bench": name, "status": "missing", "seconds": 0}
    t0 = time.perf_counter()
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    log = RESULTS / f"{name}.log"
    with open(log, "w") as fh:
        try:
            proc = subprocess.run([sys.executable, str(script), *args], stdout=fh, stderr=subprocess.STDOUT,
                                  env=env, cwd=HERE.parent, timeout=budget)
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
        except subprocess.TimeoutExpired:
            status = f"timed out after {budget} s"
    took = time.perf_counter() - t0
    print(f"{name:<16} {status:<24} {took:6.0f} s   (log: {log.relative_to(HERE.parent)})", flush=True)
    return {"bench": name, "status": status, "seconds": round(took, 1)}


def collect(names: list[str]) -> list[dict]:
    figures = []
    for name in names:
        path = RESULTS / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):  # one benchmark's bad file must not lose the others' table
            print(f"{path.name}: not a figures object (bench/figures.py save()), left out", file=sys.stderr)
            continue
        for fig in data.get("figures", []):
            figures.append({**fig, "bench": name})
    return figures


def fmt(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"
    return str(x)


def markdown(figures: list[dict], runs: list[dict]) -> str:
    lines = [
        "| figure | value | unit | baseline | ratio | goal | met | benchmark | note |",
        "|---|---:|---|---:|---:|---|---|---|---|",
    ]
    for f in figures:
        met = {True: "yes", False: "**no**", None: ""}[f["met"]]
        lines.append(f"| `{f['name']}` | {fmt(f['value'])} | {f['unit']} | {fmt(f['baseline'])} | {fmt(f['ratio'])} "
                     f"| {f['goal'] or ''} | {met} | {f['bench']} | {f.get('note', '')} |")
    lines += ["", "| benchmark | status | seconds |", "|---|---|---:|"]
    lines += [f"| {r['bench']} | {r['status']} | {r['seconds']} |" for r in runs]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help="comma-separated benchmark names (default: all)")
    args = ap.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = [run(name, a, budget) for name, a, budget in BENCHES if wanted is None or name in wanted]
    names = [r["bench"] for r in runs]
    figures = collect(names)
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "cpu_count": os.cpu_count(),
        "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "runs": runs,
        "figures": figures,
    }
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    md = markdown(figures, runs)
    header = (f"# Benchmarks ({summary['date']}, {summary['cpu_count']} CPUs, load {summary['load_avg_1_5_15']})\n\n"
              "Written by `make bench` (`bench/run_all.py`); each row comes from one script in `bench/`.\n\n")
    (RESULTS / "summary.md").write_text(header + md + "\n", encoding="utf-8")
    print()
    print(md)
    return 0 if all(r["status"] == "ok" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
