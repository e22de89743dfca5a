"""The server's running uploads: how many each user may have, where they run, how far they got.

An upload holds its slot from the moment its headers are accepted (before a byte of the
body is read) until its ingest has stopped, so a client that disconnects and retries
cannot pile up ingests that are still running. Ingests run on a pool of their own
(``StudioExtension.ingest_workers`` threads): on the shared default pool, a few long
ingests would leave every other REST call of every user waiting for a thread.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from studio_nb.services.knowledge.limits import IngestControl


class TooManyIngests(Exception):
    """The user already has as many uploads running as they may."""


class IngestJob:
    """One upload: receiving its body, then waiting for a worker, then ingesting."""

    def __init__(self, jobs: "IngestJobs", job_id: str, user: str, domain: str) -> None:
        self.jobs, self.id, self.user, self.domain = jobs, job_id, user, domain
        self.control = IngestControl()
        self.control.state = {"stage": "receiving", "done": 0, "total": 0, "since": time.time()}
        self.started = time.time()
        self._closed = False

    def received(self, done: int, total: int | None) -> None:
        self.control.state = {**self.control.state, "done": done, "total": total or 0}

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, control=..., **kwargs)`` on the ingest pool, awaited without blocking the loop."""
        self.control.state = {"stage": "queued", "done": 0, "total": 0, "since": time.time()}
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.jobs.pool, lambda: fn(*args, control=self.control, **kwargs))

    def cancel(self) -> None:
        self.control.cancel()

    def close(self) -> None:
        """Give the slot back (idempotent)."""
        if not self._closed:
            self._closed = True
            self.jobs._release(self)

    def view(self) -> dict[str, Any]:
        state = dict(self.control.state)
        return {"id": self.id, "domain": self.domain, "stage": state["stage"], "done": state["done"],
                "total": state["total"], "seconds": round(time.time() - self.started, 1),
                "cancelled": self.control.cancelled}


class IngestJobs:
    """Uploads in progress, at most ``max_per_user`` per user, ingested by ``workers`` threads."""

    def __init__(self, *, max_per_user: int, workers: int) -> None:
        self.max_per_user = max_per_user
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="studio-upload-ingest")
        self._jobs: dict[str, IngestJob] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def start(self, user: str, domain: str) -> IngestJob:
        with self._lock:
            running = sum(1 for j in self._jobs.values() if j.user == user)
            if running >= self.max_per_user:
                raise TooManyIngests(f"you have {running} upload(s) still being received or ingested")
            job = IngestJob(self, f"ingest-{next(self._ids)}", user, domain)
            self._jobs[job.id] = job
            return job

    def of(self, user: str) -> list[IngestJob]:
        with self._lock:
            return [j for j in self._jobs.values() if j.user == user]

    def _release(self, job: IngestJob) -> None:
        with self._lock:
            self._jobs.pop(job.id, None)

    def close(self) -> None:
        """Cancel every ingest (each stops at its next checkpoint) and let the pool go."""
        with self._lock:
            jobs = list(self._jobs.values())
        for job in jobs:
            job.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)
