"""Starting Ray on a loaded machine: a stand-in for a slow dashboard agent, and retries.

Kept apart from the engine: this is about getting a local Ray cluster to start on an
oversubscribed 2-core machine (CI, a laptop), not about running operators. The engine
uses it only when it starts Ray itself; tests and benchmarks that start clusters use it
too.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator

_AGENT_PORT_FILES = ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port")


@contextlib.contextmanager
def agent_port_fallback(temp_dir: str = "/tmp/ray", grace_s: float = 8.0) -> Iterator[None]:
    """While Ray starts, stand in for a dashboard agent that is too slow to start.

    The raylet gives its Python agent a fixed ~15 s to write its port files and aborts the
    node otherwise ("Timed out waiting for file .../metrics_agent_port_<node>"). On an
    oversubscribed machine importing Ray alone can take longer. Without ``ray[default]``
    the agent only ever writes ``-1`` ("service not in use") to those three files, so after
    ``grace_s`` this writes the same ``-1`` for any node whose agent has not yet: metrics
    and the agent's HTTP port stay off on that node, nothing else changes.
    """
    import re
    import threading
    import time

    t0, stop = time.time(), threading.Event()
    seen: dict[tuple[str, str], float] = {}

    def scan() -> None:
        root = Path(temp_dir)
        # only sessions this process starts (their names end in its pid): never another user's Ray
        for session in root.glob(f"session_2*_{os.getpid()}"):
            try:
                if session.stat().st_mtime < t0 - 5:
                    continue
            except OSError:
                continue
            for log in session.glob("logs/raylet*.out"):
                try:
                    ids = set(re.findall(r"node_id=([0-9a-f]{56})", log.read_text(errors="replace")))
                except OSError:
                    continue
                for node_id in ids:
                    first = seen.setdefault((str(session), node_id), time.time())
                    if time.time() - first < grace_s:
                        continue
                    for name in _AGENT_PORT_FILES:
                        target = session / f"{name}_{node_id}"
                        if not target.exists():
                            tmp = session / f".{name}_{node_id}.studio_nb"
                            tmp.write_text("-1")
                            os.replace(tmp, target)

    def watch() -> None:
        while not stop.wait(0.25):
            try:
                scan()
            except Exception:  # a helper must never break the start it is helping
                pass

    thread = threading.Thread(target=watch, name="studio-nb-ray-agent-fallback", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(2)


def start_with_retries(start: Callable[[], Any], cleanup: Callable[[], Any], attempts: int = 3) -> Any:
    """``start()`` (a ray.init or a test cluster) under ``agent_port_fallback``, retried
    after ``cleanup()`` on failure."""
    for attempt in range(1, attempts + 1):
        try:
            with agent_port_fallback():
                return start()
        except Exception:
            cleanup()
            if attempt == attempts:
                raise


__all__ = ["agent_port_fallback", "start_with_retries"]
