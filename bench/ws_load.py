"""WebSocket load: real clients against a real ``jupyter server`` with the Studio extension.

    .venv/bin/python bench/ws_load.py [--messages 6] [--clients 32] [--max-tokens 16]

Phase 1 (N=1): the same questions alternately through the in-process pipeline and
through the socket, so machine load hits both alike. Reports time to first token (TTFT)
p50/p95 and tokens/s for each; the goal is socket TTFT <= in-process TTFT + 10 ms.

Phase 2 (N clients at once, M messages each): every request must end with exactly one
``done`` frame, the text frames of a request must concatenate to its ``done`` text (no
frame lost or duplicated), and every ``running`` step must have its end. Prints the
counts; writes bench/results/ws_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.jupyter.server_proc import JupyterServerProcess  # noqa: E402

QUESTIONS = [
    "What is SAGE?",
    "How do I build a pipeline with operators?",
    "What does the knowledge manager do?",
    "Explain parallel branches in one sentence.",
    "How is memory stored?",
    "What is a token budget guard?",
]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class Turn:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.first: float | None = None
        self.first_event: float | None = None
        self.end: float | None = None
        self.tokens = 0

    def token(self) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.tokens += 1

    def event(self) -> None:
        if self.first_event is None:
            self.first_event = time.perf_counter()

    @property
    def ttfe_ms(self) -> float:
        """Time to the first step event: the request path without the model (low noise)."""
        return (self.first_event - self.t0) * 1000

    @property
    def ttft_ms(self) -> float:
        return (self.first - self.t0) * 1000

    @property
    def tps(self) -> float:
        span = self.end - self.first
        return (self.tokens - 1) / span if self.tokens > 1 and span > 0 else float("nan")


async def inproc_turn(pipe, question: str) -> Turn:
    from studio_nb.kernel.events import StepEvent
    from studio_nb.messages import Response, TextDelta

    t = Turn()
    async for ev in pipe.astream(question, session_id="b-" + uuid.uuid4().hex[:10], user="bench",
                                 request_id=uuid.uuid4().hex[:16], events=True):
        if isinstance(ev, StepEvent):
            t.event()
        elif isinstance(ev, TextDelta) and ev.content:
            t.token()
        elif isinstance(ev, Response):
            t.end = time.perf_counter()
    return t


async def socket_turn(ws, question: str) -> Turn:
    rid = uuid.uuid4().hex[:16]
    t = Turn()
    await ws.send(json.dumps({"type": "chat", "message": question, "session_id": "b-" + rid[:10], "request_id": rid}))
    while True:
        f = json.loads(await ws.recv())
        if f.get("request_id") != rid:
            continue
        if f["type"] == "step":
            t.event()
        elif f["type"] == "text" and f["content"]:
            t.token()
        elif f["type"] in ("done", "error"):
            if f["type"] == "error":
                raise RuntimeError(f"request failed: {f}")
            t.end = time.perf_counter()
            return t


def summary(turns: list[Turn]) -> dict[str, float]:
    ttft = [t.ttft_ms for t in turns if t.first is not None]
    ttfe = [t.ttfe_ms for t in turns if t.first_event is not None]
    tps = [t.tps for t in turns if t.tps == t.tps]
    return {"n": len(turns), "ttft_p50_ms": round(pct(ttft, 0.5), 2), "ttft_p95_ms": round(pct(ttft, 0.95), 2),
            "first_event_p50_ms": round(pct(ttfe, 0.5), 3), "first_event_p95_ms": round(pct(ttfe, 0.95), 3),
            "tokens_per_s_median": round(statistics.median(tps), 2) if tps else None}


async def phase1(srv: JupyterServerProcess, pipe, messages: int) -> dict:
    from websockets.asyncio.client import connect

    inproc, sock = [], []
    async with connect(f"ws://127.0.0.1:{srv.port}/studio/api/chat",
                       additional_headers={"Authorization": f"token {srv.token}"}) as ws:
        # one warm turn each (first prompt evaluation, caches), not counted
        await inproc_turn(pipe, QUESTIONS[0])
        await socket_turn(ws, QUESTIONS[0])
        for i in range(messages):
            q = QUESTIONS[i % len(QUESTIONS)]
            if i % 2 == 0:  # alternate which goes first so drift in machine load cancels
                inproc.append(await inproc_turn(pipe, q))
                sock.append(await socket_turn(ws, q))
            else:
                sock.append(await socket_turn(ws, q))
                inproc.append(await inproc_turn(pipe, q))
    a, b = summary(inproc), summary(sock)
    return {"in_process": a, "socket": b,
            "ttft_p50_overhead_ms": round(b["ttft_p50_ms"] - a["ttft_p50_ms"], 2),
            "first_event_p50_overhead_ms": round(b["first_event_p50_ms"] - a["first_event_p50_ms"], 3)}


async def client(srv: JupyterServerProcess, idx: int, messages: int, tally: dict) -> None:
    from websockets.asyncio.client import connect

    async with connect(f"ws://127.0.0.1:{srv.port}/studio/api/chat",
                       additional_headers={"Authorization": f"token {srv.token}"}, max_queue=None) as ws:
        rids = [f"c{idx}-m{j}-{uuid.uuid4().hex[:6]}" for j in range(messages)]
        for j, rid in enumerate(rids):  # all in flight at once on this socket
            await ws.send(json.dumps({"message": QUESTIONS[(idx + j) % len(QUESTIONS)],
                                      "session_id": f"load-{idx}-{j}-{rid[-6:]}", "request_id": rid}))
        state = {rid: {"text": [], "done": 0, "errors": [], "open_steps": {}, "frames": 0} for rid in rids}
        remaining = set(rids)
        while remaining:
            f = json.loads(await asyncio.wait_for(ws.recv(), 1800))  # one model: requests wait their turn
            rid = f.get("request_id")
            if rid not in state:
                tally["stray_frames"] += 1
                continue
            s = state[rid]
            s["frames"] += 1
            if rid not in remaining:
                tally["frames_after_done"] += 1
            if f["type"] == "text":
                if f.get("restart"):
                    s["text"].clear()
                s["text"].append(f["content"])
            elif f["type"] == "step":  # every start has one end; a branch may be skipped without a start
                key, opened = f["operator"], s["open_steps"].get(f["operator"], 0)
                if f["status"] == "running":
                    s["open_steps"][key] = opened + 1
                elif opened > 0:
                    s["open_steps"][key] = opened - 1
                elif f["status"] != "skipped":
                    s["open_steps"][key] = -1  # an end without a start
            elif f["type"] == "done":
                s["done"] += 1
                s["final"] = f.get("text", "")
                remaining.discard(rid)
            elif f["type"] == "error":
                s["errors"].append(f["code"])
                remaining.discard(rid)
        for rid, s in state.items():
            tally["requests"] += 1
            tally["frames"] += s["frames"]
            tally["text_frames"] += len(s["text"])
            if s["errors"]:
                tally["errors"].extend(s["errors"])
                continue
            tally["done_frames"] += s["done"]
            if "".join(s["text"]) != s["final"]:
                tally["text_mismatch"] += 1
            if any(v != 0 for v in s["open_steps"].values()):
                tally["unbalanced_steps"] += 1


async def phase2(srv: JupyterServerProcess, clients: int, messages: int) -> dict:
    tally = {"requests": 0, "frames": 0, "text_frames": 0, "done_frames": 0, "errors": [], "text_mismatch": 0,
             "unbalanced_steps": 0, "stray_frames": 0, "frames_after_done": 0}
    t0 = time.perf_counter()
    await asyncio.gather(*(client(srv, i, messages, tally) for i in range(clients)))
    tally["wall_s"] = round(time.perf_counter() - t0, 2)
    tally["expected_requests"] = clients * messages
    tally["ok"] = (tally["requests"] == clients * messages and tally["done_frames"] == clients * messages
                   and not tally["errors"] and tally["text_mismatch"] == 0 and tally["unbalanced_steps"] == 0
                   and tally["stray_frames"] == 0 and tally["frames_after_done"] == 0)
    return tally


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=6, help="messages per mode in phase 1")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--load-messages", type=int, default=2, help="messages per client in phase 2")
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--k", type=int, default=1, help="sources per answer (prompt length) for both pipelines")
    args = ap.parse_args()

    from studio_nb.studio import create_studio_pipeline

    work = Path(tempfile.mkdtemp(prefix="ws_load-"))
    cap = max(64, args.clients * args.load_messages)
    srv = JupyterServerProcess(work / "server", work / "server-data", max_tokens=args.max_tokens,
                               extra={"max_requests_per_user": cap, "max_requests_total": cap,
                                      "pipeline_overrides": {"max_tokens": args.max_tokens, "k": args.k}}).start()
    pipe = create_studio_pipeline(data_dir=str(work / "inproc-data"), max_tokens=args.max_tokens, k=args.k)
    try:
        t0 = time.perf_counter()
        pipe.warm_up()
        srv.wait_ready()
        print(f"both pipelines warm in {time.perf_counter() - t0:.1f} s")
        p1 = asyncio.run(phase1(srv, pipe, args.messages))
        print(f"N=1, {args.messages} messages, max_tokens={args.max_tokens}")
        for mode in ("in_process", "socket"):
            s = p1[mode]
            print(f"  {mode:10s} TTFT p50 {s['ttft_p50_ms']:8.1f} ms  p95 {s['ttft_p95_ms']:8.1f} ms  "
                  f"{s['tokens_per_s_median']} tok/s   first step event p50 {s['first_event_p50_ms']:.2f} ms "
                  f"p95 {s['first_event_p95_ms']:.2f} ms")
        print(f"  socket TTFT overhead (p50): {p1['ttft_p50_overhead_ms']:+.1f} ms (goal <= +10 ms); "
              f"first-event overhead (p50, no model in it): {p1['first_event_p50_overhead_ms']:+.2f} ms")
        p2 = asyncio.run(phase2(srv, args.clients, args.load_messages))
        print(f"N={args.clients} x {args.load_messages}: {p2['requests']}/{p2['expected_requests']} requests, "
              f"{p2['done_frames']} done frames, {p2['frames']} frames ({p2['text_frames']} text), "
              f"errors {p2['errors'] or 0}, text mismatches {p2['text_mismatch']}, unbalanced steps "
              f"{p2['unbalanced_steps']}, stray {p2['stray_frames']}, after-done {p2['frames_after_done']} "
              f"in {p2['wall_s']} s -> {'OK' if p2['ok'] else 'FAILED'}")
        out = REPO / "bench" / "results" / "ws_load.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"args": vars(args), "phase1": p1, "phase2": p2}, indent=2))
        print(f"wrote {out.relative_to(REPO)}")
        return 0 if p2["ok"] else 1
    finally:
        pipe.close()
        srv.stop()


if __name__ == "__main__":
    sys.exit(main())
