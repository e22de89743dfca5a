"""From launching a Jupyter server to the Studio being ready, and the first answer after it.

A real ``jupyter server`` child process with the Studio extension (the same launcher the
tests use: it binds port 0 itself, and like ``studio-nb serve`` it keeps jsonschema's unused
IRI checker out of Jupyter's start-up: ``jupyter_ext/fast_start.py``). Measured, per start:

- ``listening``: launch -> the server accepts connections;
- ``ready``: launch -> ``studio/api/health`` reports the pipeline warmed up (models loaded,
  intent prototypes embedded or loaded from the cache, indexes open, studio-nb's docs
  ingested), polled every 50 ms, with the warm-up steps the server reported on the way;
- ``first evidence`` and ``first token``: a WebSocket question sent right after ready ->
  its evidence frame, its first text frame.

Two starts on one data dir: a *first start* (nothing cached: the bundled docs are ingested
and the intent prototypes embedded) and a *restart* (what a user sees every day after).
The goal (<= 5 s launch -> ready on 2 cores) is judged on the restart. With
``--baseline-runtime torch`` one more restart serves the embedding model through
sentence-transformers (the old default) as the same run's baseline.

    .venv/bin/python bench/warm_up.py [--starts 2] [--baseline-runtime torch]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.jupyter.server_proc import JupyterServerProcess  # noqa: E402

GOAL_S = 5.0
QUESTION = "What is a ParallelGroup in studio-nb?"


def poll_ready(srv: JupyterServerProcess, t0: float, timeout: float = 600) -> tuple[float, list]:
    """Seconds from launch to ready, and the warm-up steps seen (step, done/total, at s)."""
    import urllib.error

    seen, end = [], time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            runtime = srv.get("studio/api/health")["runtime"]
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            runtime = {"status": "down"}
        progress = runtime.get("warm_up_progress")
        if progress and (not seen or seen[-1][0] != progress["step"]):
            seen.append((progress["step"], f"{progress['done']}/{progress['total']}", progress["elapsed_s"]))
        if runtime["status"] == "ready":
            return time.perf_counter() - t0, seen
        if runtime["status"] == "failed":
            raise RuntimeError(f"warm-up failed: {runtime}")
        time.sleep(0.05)
    raise TimeoutError("the Studio server was not ready in time")


async def first_answer(srv: JupyterServerProcess) -> dict[str, float]:
    import websockets

    url = srv.url.replace("http", "ws") + f"studio/api/chat?token={srv.token}"
    out: dict[str, float] = {}
    async with websockets.connect(url, max_size=None) as ws:
        t0 = time.perf_counter()
        await ws.send(json.dumps({"type": "chat", "message": QUESTION, "session_id": "warm", "request_id": "w1"}))
        while True:
            frame = json.loads(await ws.recv())
            now = (time.perf_counter() - t0) * 1000
            if frame["type"] == "evidence" and "evidence_ms" not in out:
                out["evidence_ms"] = now
            elif frame["type"] == "text" and frame.get("content") and "token_ms" not in out:
                out["token_ms"] = now
            elif frame["type"] in ("done", "error"):
                out["done_ms"] = now
                out["ok"] = frame["type"] == "done"
                return out


def one_start(work: Path, data: Path, n: int, runtime: str | None = None) -> dict:
    overrides = {"max_tokens": 48, **({"embedding_runtime": runtime} if runtime else {})}
    srv = JupyterServerProcess(work / f"start{n}", data, extra={"pipeline_overrides": overrides})
    t0 = time.perf_counter()
    srv.start()
    listening = time.perf_counter() - t0
    try:
        ready, steps = poll_ready(srv, t0)
        answer = asyncio.run(first_answer(srv))
    finally:
        srv.stop()
    return {"listening_s": round(listening, 2), "ready_s": round(ready, 2), "steps": steps, **answer}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=2, help="starts on one data dir (the first one is cold)")
    ap.add_argument("--baseline-runtime", help="one more restart with this embedding_runtime (e.g. torch)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="studio-warm-") as tmp:
        work, data = Path(tmp), Path(tmp) / "data"
        runs = [one_start(work, data, n) for n in range(args.starts)]
        base = one_start(work, data, args.starts, args.baseline_runtime) if args.baseline_runtime else None
    for n, r in enumerate(runs):
        kind = "first start" if n == 0 else "restart"
        print(f"{kind:<12} listening {r['listening_s']:5.2f} s  ready {r['ready_s']:5.2f} s  "
              f"first evidence {r.get('evidence_ms', float('nan')):6.0f} ms  first token "
              f"{r.get('token_ms', float('nan')):6.0f} ms  answer {r['done_ms']:6.0f} ms")
        print(f"             steps: {r['steps']}")
    if base is not None:
        print(f"restart with embedding_runtime {args.baseline_runtime}: listening {base['listening_s']:5.2f} s  "
              f"ready {base['ready_s']:5.2f} s\n             steps: {base['steps']}")
    from figures import figure, save

    last = runs[-1]
    figures = [
        figure("warm_up", last["ready_s"], "s", goal=f"<= {GOAL_S:g}",
               baseline=base["ready_s"] if base else None,
               note="launch -> ready, restart on the same data dir (the first start: "
               f"{runs[0]['ready_s']} s, it ingests the bundled docs and embeds the intent prototypes; of the "
               f"restart, the server listened at {last['listening_s']} s)"
               + (f"; baseline: a restart with embedding_runtime {args.baseline_runtime}" if base else "")),
        figure("first_evidence_after_start", last.get("evidence_ms", float("nan")), "ms",
               note="a question sent right after ready: its evidence frame"),
        figure("first_token_after_start", last.get("token_ms", float("nan")), "ms",
               note="... and its first generated token"),
    ]
    save("warm_up", figures, {"runs": runs, "baseline_run": base, "cpu_count": os.cpu_count(),
                              "load_avg": os.getloadavg()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
