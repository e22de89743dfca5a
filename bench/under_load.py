"""One user's answers while another user does the worst their limits allow (issue #21).

A real ``jupyter server`` child process with two users (alice, bob; the test identity
provider), the real pipeline and the bundled model. alice asks the same grounded question
again and again; her *time to first token* is from sending the chat frame to the first
``text`` frame (the model's first synthesis token; the evidence comes earlier). It is
measured quiet, then while bob

- **floods**: four sockets sending malformed and oversized frames as fast as they go;
- **uploads 200 MB**: one request without a token and one with bob's token, both with a
  200 MB body; the server's RSS is sampled all the while (the peak over the idle figure is
  reported: goal ≤ +50 MB);
- **ingests a page-bomb PDF**: 1,000 pages sharing one content stream (a ~190 KB file);
- **replays with lifted params** (refused: the allow-list) and then runs the longest
  generation his limits allow (a generative answer of the server's ``max_tokens``).

Each condition's median is reported against the quiet median measured in the same run
(goal: ratio ≤ 2).

    .venv/bin/python bench/under_load.py [--rounds 5] [--max-tokens 256]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest  # noqa: E402
from tornado.websocket import websocket_connect  # noqa: E402

from tests.jupyter.conftest import Client, multipart  # noqa: E402
from tests.jupyter.identity import token  # noqa: E402
from tests.jupyter.server_proc import JupyterServerProcess  # noqa: E402
from tests.pdf_bomb import page_bomb  # noqa: E402

#: alice's questions, a new one each time (the same one again would find its prompt in the KV cache)
QUESTIONS = [
    "What is a ParallelGroup in studio-nb?", "How do I replay a turn from an operator?",
    "What does the token budget operator do?", "How are knowledge domains kept private?",
    "What is the grounding guard for?", "How do I set a breakpoint before an operator?",
    "What does the evidence operator pick?", "How does the intent router choose domains?",
    "How do I ingest a folder of documents?", "What is a feedback edge in a pipeline?",
    "What does the memory saver store?", "How do I switch an operator for one session?",
]
_asked = iter(range(10**6))
#: the page bomb's shared stream: ~50 KB of text drawn by 1,000 pages (a ~190 KB file, as in the
#: issue), 50 MB of content to parse, under the content limit: the characters limit stops it
BOMB_TEXT = b"zebra quince ledger " * 2500
LONG = "Write a very long, detailed essay about distributed stream processing, with many sections."


async def connect(srv, user):
    req = HTTPRequest(f"ws://127.0.0.1:{srv.port}/studio/api/chat", headers=token(user))
    return Client(await websocket_connect(req))


async def rest(srv, user, path, **kw):
    headers = {**(token(user) if user else {}), **kw.pop("headers", {})}
    req = HTTPRequest(f"{srv.url}studio/api/{path}", headers=headers, request_timeout=900, **kw)
    try:
        r = await AsyncHTTPClient(max_body_size=1 << 31).fetch(req)
        return r.code, json.loads(r.body or b"{}")
    except HTTPClientError as err:
        body = err.response.body if err.response is not None else b"{}"
        try:
            return err.code, json.loads(body or b"{}")
        except ValueError:
            return err.code, {"raw": body[:200].decode(errors="replace")}
    except Exception as exc:  # the server may close a refused upload before the body is sent
        return 599, {"code": type(exc).__name__, "message": str(exc)}


async def wait_ready(srv, timeout=900):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            code, health = await rest(srv, "alice", "health")
            if code == 200 and health["runtime"]["status"] == "ready":
                return
        except OSError:
            pass
        await asyncio.sleep(1)
    raise TimeoutError("the server did not warm up")


async def alice_ttft(srv, ws, n: int, tag: str) -> list[float]:
    """alice's time to first synthesis token (ms) for ``n`` questions, one after another."""
    out = []
    for i in range(n):
        rid = f"{tag}-{i}"
        t0 = time.perf_counter()
        question = QUESTIONS[next(_asked) % len(QUESTIONS)]
        await ws.send({"message": question, "session_id": f"alice-{tag}-{i}", "request_id": rid})
        first = None
        while True:
            frame = await ws.recv(600)
            if frame.get("request_id") != rid:
                continue
            if frame["type"] == "text" and first is None:
                first = (time.perf_counter() - t0) * 1000
            if frame["type"] in ("done", "error"):
                break
        out.append(first if first is not None else float("nan"))
    return out


class RssSampler:
    """The server's RSS every 20 ms on a thread; ``peak`` the largest seen."""

    def __init__(self, srv):
        self.srv, self.peak, self._stop = srv, 0, threading.Event()

    def __enter__(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.srv.rss_bytes())
            except (OSError, RuntimeError):
                return
            self._stop.wait(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()


async def flood(srv, stop: asyncio.Event):
    socks = [await connect(srv, "bob") for _ in range(4)]
    junk = ["{not json", json.dumps({"type": "nope"}), json.dumps({"message": "x" * 20000, "session_id": "b"}), "[]"]
    sent = 0
    while not stop.is_set():
        for s in socks:
            await s.send(junk[sent % len(junk)])
            sent += 1
        if sent % 200 == 0:
            await asyncio.sleep(0)
    for s in socks:
        s.ws.close()
    return sent


async def big_uploads(srv, size: int):
    body = b"a" * size
    ctype, _ = multipart({"x.md": b""})
    boundary = ctype.split("boundary=")[1]
    payload = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="big.md"\r\n\r\n').encode() \
        + body + f"\r\n--{boundary}--\r\n".encode()
    results = await asyncio.gather(
        rest(srv, None, "knowledge/bob_big/files", method="POST", body=payload, headers={"Content-Type": ctype}),
        rest(srv, "bob", "knowledge/bob_big/files", method="POST", body=payload, headers={"Content-Type": ctype}))
    return [code for code, _ in results]


async def bomb_upload(srv):
    ctype, body = multipart({"bomb.pdf": page_bomb(1000, BOMB_TEXT)})
    t0 = time.perf_counter()
    code, out = await rest(srv, "bob", "knowledge/bob_bomb/files", method="POST", body=body,
                           headers={"Content-Type": ctype})
    return code, out.get("code"), out.get("message", "")[:160], time.perf_counter() - t0


async def longest_generation(srv, max_tokens: int):
    ws = await connect(srv, "bob")
    await ws.send({"message": "What is a Pipeline?", "session_id": "bob-long", "request_id": "seed"})
    await ws.until_done("seed", timeout=600)
    await ws.send({"type": "replay", "session_id": "bob-long", "request_id": "lifted", "from": "prompt_builder",
                   "params": {"prompt_builder": {"max_tokens": 1800, "synthesis_tokens": 1800},
                              "llm_inference": {"stop_on_loop": False}}})
    refused = (await ws.until_done("lifted"))[-1]
    await rest(srv, "bob", "pipeline/variants", method="PUT",
               body=json.dumps({"session_id": "bob-long", "setting": "answer_mode", "value": "generative"}))
    return ws, refused


async def measure(args, work: Path) -> dict:
    srv = JupyterServerProcess(work, work / "data", max_tokens=args.max_tokens,
                               identity_provider="tests.jupyter.identity.TwoUsers").start()
    res: dict = {"max_tokens": args.max_tokens, "rounds": args.rounds}
    try:
        await wait_ready(srv)
        alice = await connect(srv, "alice")
        await alice_ttft(srv, alice, 1, "warm")
        res["quiet"] = await alice_ttft(srv, alice, args.rounds, "quiet")
        res["idle_rss_mb"] = srv.rss_bytes() / 2**20

        stop = asyncio.Event()
        flooding = asyncio.create_task(flood(srv, stop))
        await asyncio.sleep(0.5)
        res["flood"] = await alice_ttft(srv, alice, args.rounds, "flood")
        stop.set()
        res["flood_frames"] = await flooding

        with RssSampler(srv) as rss:
            before = srv.rss_bytes()
            uploading = asyncio.create_task(big_uploads(srv, args.upload_mb * 2**20))
            res["upload"] = await alice_ttft(srv, alice, args.rounds, "upload")
            res["upload_status"] = await uploading
        res["upload_rss_peak_over_idle_mb"] = (rss.peak - before) / 2**20

        bombing = asyncio.create_task(bomb_upload(srv))
        res["bomb"] = await alice_ttft(srv, alice, args.rounds, "bomb")
        res["bomb_result"] = await bombing

        bob, refused = await longest_generation(srv, args.max_tokens)
        res["replay_refused"] = {"code": refused.get("code"), "message": refused.get("message", "")[:160]}
        res["long"] = []
        for i in range(args.rounds):
            await bob.send({"message": LONG, "session_id": "bob-long", "request_id": f"long-{i}"})
            while True:  # his generation is under way before she asks
                frame = await bob.recv(600)
                if frame.get("request_id") == f"long-{i}" and frame["type"] in ("text", "done", "error"):
                    break
            res["long"] += await alice_ttft(srv, alice, 1, f"long{i}")
            done = await bob.until_done(f"long-{i}", timeout=600)
            res.setdefault("bob_tokens", []).append((done[-1].get("usage") or {}).get("completion_tokens"))
    finally:
        srv.stop()
    return res


def _median(times: list[float]) -> float:
    """The median over the rounds whose answer had a model token (an answer that is its evidence
    alone, e.g. nothing found, has none: NaN, which would make statistics.median meaningless)."""
    answered = [t for t in times if t == t]
    return statistics.median(answered) if answered else float("nan")


def _counted(times: list[float]) -> str:
    answered = sum(1 for t in times if t == t)
    return f"median of {answered}" + ("" if answered == len(times) else f" answered with a token, of {len(times)}")


def entries(res: dict) -> list[dict]:
    from figures import figure

    quiet = _median(res["quiet"])
    out = [figure("under_load_alice_ttft_quiet", quiet, "ms", note=_counted(res["quiet"]))]
    for key, label in (("flood", "bob floods 4 sockets"), ("upload", "bob uploads 200 MB (and one without token)"),
                       ("bomb", "bob ingests a 1,000-page PDF bomb"),
                       ("long", f"bob generates {res['max_tokens']} tokens (replay with lifted params refused)")):
        out.append(figure(f"under_load_alice_ttft_{key}", _median(res[key]), "ms", baseline=quiet,
                          goal="ratio <= 2", note=f"{label}; {_counted(res[key])}"))
    out.append(figure("under_load_upload_rss_peak", res["upload_rss_peak_over_idle_mb"], "MB", goal="<= 50",
                      note=f"server RSS peak over idle during two 200 MB uploads (status {res['upload_status']})"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=256, help="the server's max_tokens (bob's longest answer)")
    ap.add_argument("--upload-mb", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="studio-under-load-") as tmp:
        res = asyncio.run(measure(args, Path(tmp)))
    out = entries(res)
    for e in out:
        print(f"{e['name']:<34} {e['value']:>9} {e['unit']:<3} ratio {e['ratio']}  goal {e['goal']}: "
              f"{e['met']}  ({e.get('note', '')})")
    print(json.dumps({k: v for k, v in res.items() if not isinstance(v, list) or len(v) < 12}, default=str))
    from figures import save

    save("under_load", out, {"runs": res})


if __name__ == "__main__":
    main()
