"""What does Studio in JupyterLab's chat cost a server? Start-up time and memory, same run.

Three configurations of a real ``jupyter server`` child process (tests/jupyter/server_proc.py,
the same one the browser tests use), started in turn, the order rotating every round so
load on this shared machine hits each alike:

- ``baseline``: the Studio extension alone (jupyterlab-chat's server extension disabled);
- ``chat``: jupyterlab-chat's server extension loaded, the Studio chat member off
  (``StudioExtension.chat_member = "off"``): what jupyterlab-chat itself costs;
- ``member``: both, the member answering @Studio (``chat_member = "auto"``).

Start-up = process start -> the server listens; RSS is read once it listens and again
after a chat file was opened over jupyterlab-chat's WebSocket (the member then joins the
chat). Models are not warmed (``warm_up_on_start = False``): this is the cost of the
extensions, not of the pipeline. Writes bench/results/chat_member.json.

    .venv/bin/python bench/chat_member.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import bench_env  # noqa: F401  (offline settings, the repository on sys.path)

from tests.jupyter.server_proc import JupyterServerProcess  # noqa: E402

CONFIGS = {
    "baseline": ({"chat_member": "off"}, {"jupyterlab_chat": False}),
    "chat": ({"chat_member": "off"}, {"jupyterlab_chat": True}),
    "member": ({"chat_member": "auto"}, {"jupyterlab_chat": True}),
}


async def open_chat(srv: JupyterServerProcess, path: str) -> None:
    import websockets

    url = f"ws://127.0.0.1:{srv.port}/api/chat/ws/{path}"
    async with websockets.connect(url, additional_headers={"Authorization": f"token {srv.token}"}) as ws:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert "messages" in frame or frame.get("type") == "server", frame


def one_start(work: Path, name: str) -> dict[str, float]:
    studio, extensions = CONFIGS[name]
    srv = JupyterServerProcess(work, work / "data", extra={**studio, "warm_up_on_start": False})
    srv.config["ServerApp"]["jpserver_extensions"] = extensions
    (work / "root").mkdir(parents=True, exist_ok=True)
    (work / "root" / "bench.chat").write_text("{}")
    t0 = time.perf_counter()
    srv.start()
    start_s = time.perf_counter() - t0
    try:
        rss_start = srv.rss_bytes() / 2**20
        rss_chat = None
        if extensions.get("jupyterlab_chat"):
            asyncio.run(open_chat(srv, "bench.chat"))
            time.sleep(0.5)
            rss_chat = srv.rss_bytes() / 2**20
        return {"start_s": start_s, "rss_mb": rss_start, "rss_after_chat_mb": rss_chat}
    finally:
        srv.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    runs: dict[str, list[dict]] = {k: [] for k in CONFIGS}
    names = list(CONFIGS)
    with tempfile.TemporaryDirectory(prefix="studio-chat-bench-") as tmp:
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                runs[name].append(one_start(Path(tmp) / f"{name}-{r}", name))
                print(name, runs[name][-1], flush=True)
    med = {k: {m: statistics.median(x[m] for x in v) for m in ("start_s", "rss_mb")} for k, v in runs.items()}
    chat_rss = [x["rss_after_chat_mb"] for x in runs["member"] if x["rss_after_chat_mb"]]
    chat_rss_off = [x["rss_after_chat_mb"] for x in runs["chat"] if x["rss_after_chat_mb"]]
    from figures import figure, save

    figs = [
        figure("chat_member_start_ratio", med["member"]["start_s"], "s", baseline=med["baseline"]["start_s"],
               note="server start with jupyterlab-chat + the Studio member, against the Studio extension alone"),
        figure("chat_member_own_start", med["member"]["start_s"], "s", baseline=med["chat"]["start_s"],
               note="the member's own share: against jupyterlab-chat loaded without it"),
        figure("chat_member_rss", med["member"]["rss_mb"], "MB", baseline=med["baseline"]["rss_mb"],
               note="server RSS once listening, against the Studio extension alone"),
        figure("chat_member_rss_open_chat", statistics.median(chat_rss), "MB",
               baseline=statistics.median(chat_rss_off),
               note="RSS after one chat was opened, member on against member off"),
    ]
    for f in figs:
        print(f)
    path = save("chat_member", figs, {"medians": med, "runs": runs})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
