"""Ingestion on a Ray cluster: splitting and embedding spread over its workers.

``RayWork`` is an ingest ``work`` strategy (see ``ingest.py``): the driver still walks
the folder, hashes every file (an unchanged file costs one hash, as locally), reuses the
vectors of unchanged chunks and writes the one store; what costs — cutting files into
chunks, embedding them, cutting them into search terms — runs on ``workers`` Ray actors
(one per CPU of the cluster by default, ``num_cpus`` each), each with its own embedding
model (the ONNX runtime: under a second to load, one thread per actor). Files travel as
bytes, so workers on other machines need no shared disk; the model's ONNX export is
found in (or made into) the same cache folder on each node.

Work is handed out in slices to whichever actor is free (two in flight each), longest
texts first, and the progress bar moves as slices come back; cancelling (``IngestControl``)
is checked between slices. Ray is imported on first use.

    work = RayWork(workers=2)          # ray.init() (or RayEngine.start()) first
    km.ingest("papers/", "papers", work=work)
    work.close()                       # kills the actors
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from studio_nb.errors import ConfigError, StudioError
from studio_nb.services.knowledge.limits import IngestControl, IngestLimits
from studio_nb.services.knowledge.split_text import SplitConfig


class IngestWorker:
    """One Ray actor: splits files, embeds texts, cuts terms (state: its embedder)."""

    def __init__(self) -> None:
        self._embedder = None
        self._spec: tuple | None = None
        self.done = {"files": 0, "embedded": 0, "terms": 0}

    def split(self, items: list[tuple[str, bytes]], cfg: SplitConfig, limits: IngestLimits):
        """``[(relative path, bytes)]`` -> ``[(rel, pieces or None, error or None)]``."""
        from studio_nb.services.knowledge.splitters import SkipFile, split_file

        out = []
        self.done["files"] += len(items)
        for rel, data in items:
            try:
                out.append((rel, split_file(Path(rel), data, cfg, limits, None, rel), None))
            except SkipFile as exc:
                out.append((rel, None, f"{rel}: {exc}"))
            except StudioError as exc:  # a limit: the driver raises it
                out.append((rel, None, exc))
        return out

    def embed(self, spec: tuple, texts: list[str], batch_size: int) -> np.ndarray:
        if self._embedder is None or spec != self._spec:
            from studio_nb.services.embeddings import Embedder

            model_path, runtime, cache_dir = spec
            self._embedder = Embedder(model_path, runtime=runtime, cache_dir=cache_dir, threads=1, cache_size=0)
            self._spec = spec
        self.done["embedded"] += len(texts)
        return self._embedder.encode(texts, batch_size=batch_size)

    def terms(self, texts: list[str]) -> list[list[str]]:
        from studio_nb.services.tokenizer import tokenize

        self.done["terms"] += len(texts)
        return [tokenize(t) for t in texts]

    def ready(self) -> bool:
        return True

    def stats(self) -> dict:
        """What this worker did so far, and where (its process id)."""
        import os

        return {**self.done, "pid": os.getpid()}


class RayWork:
    """Split and embed on Ray actors; see the module docstring."""

    name = "ray"

    def __init__(self, workers: int | None = None, *, num_cpus: float = 1.0, files_per_task: int = 8,
                 slice_size: int = 64) -> None:
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"ingest workers must be a positive integer, not {workers!r}")
        self.workers, self.num_cpus = workers, num_cpus
        self.files_per_task, self.slice_size = files_per_task, slice_size
        self._actors: list[Any] = []

    def __repr__(self) -> str:
        return f"RayWork(workers={self.workers or 'one per CPU'}, started={len(self._actors)})"

    # ------------------------------------------------------------------ actors
    def actors(self) -> list[Any]:
        import ray

        if not ray.is_initialized():
            raise ConfigError("Ray is not running; fix: call ray.init() (or RayEngine.start()) before a Ray ingest")
        if not self._actors:
            n = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1) // max(self.num_cpus, 0.01)))
            cls = ray.remote(num_cpus=self.num_cpus)(IngestWorker)
            self._actors = [cls.remote() for _ in range(n)]
            ray.get([a.ready.remote() for a in self._actors])
        return self._actors

    def stats(self) -> list[dict]:
        """Each actor's counts (files split, texts embedded, texts cut into terms) and pid."""
        import ray

        return ray.get([a.stats.remote() for a in self._actors])

    def close(self) -> None:
        """Kill the actors (a later ingest starts new ones)."""
        import ray

        actors, self._actors = self._actors, []
        for a in actors:
            try:
                ray.kill(a)
            except Exception:  # already gone with its cluster
                pass

    def _run(self, jobs: list[tuple[str, tuple]], on_done, control: IngestControl | None, stage: str, total: int) -> list:
        """Run ``(method, args)`` jobs on the actors, each free actor taking the next;
        ``on_done(job index, result)`` as each comes back. Returns the results in job order."""
        import ray

        actors = self.actors()
        results: list = [None] * len(jobs)
        pending: dict[Any, tuple[int, Any]] = {}
        busy = {i: 0 for i in range(len(actors))}
        nxt = done = 0
        while nxt < len(jobs) or pending:
            while nxt < len(jobs):
                free = min(busy, key=busy.get)
                if busy[free] >= 2:
                    break
                method, args = jobs[nxt]
                pending[getattr(actors[free], method).remote(*args)] = (nxt, free)
                busy[free] += 1
                nxt += 1
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i, actor = pending.pop(ref)
                busy[actor] -= 1
                results[i] = ray.get(ref)
                done += 1
                on_done(i, results[i])
            if control is not None:
                control.progress(stage, done, total)  # raises once cancelled
        return results

    # ------------------------------------------------------------------ the work strategy
    def read(self, files: list[tuple[Path, str]], known: dict[str, str], cfg: SplitConfig, errors: list[str],
             limits: IngestLimits, control: IngestControl | None):
        """Hash every file here; split the new or changed ones on the workers."""
        from studio_nb.services.knowledge.ingest import Scan, _Pending, changed_files

        scan, batch, jobs, meta = Scan(set()), [], [], {}
        for _, rel, digest, data in changed_files(files, known, errors, control, scan):
            meta[rel] = (digest, len(data))
            batch.append((rel, data))
            if len(batch) >= self.files_per_task:
                jobs.append(("split", (batch, cfg, limits)))
                batch = []
        if batch:
            jobs.append(("split", (batch, cfg, limits)))
        results = self._run(jobs, lambda i, r: None, control, "reading", len(jobs))
        pending, chunks = [], 0
        for part in results:
            for rel, pieces, err in part:
                if isinstance(err, BaseException):
                    raise err
                if err is not None:
                    errors.append(err)
                    continue
                chunks += len(pieces)
                limits.check("max_chunks", chunks, f"the files up to {rel} make {chunks:,} chunks")
                pending.append(_Pending(rel, meta[rel][0], meta[rel][1], pieces))
        return pending, scan.unchanged, scan.seen

    def vectors_and_terms(self, texts: list[list[str]], todo: list[str], embedder, batch_size: int, progress: bool,
                          control: IngestControl | None):
        """Vectors of ``todo`` (longest first, in slices) and every text's terms, on the workers."""
        from tqdm.auto import tqdm

        spec = (getattr(embedder, "model_path", None), getattr(embedder, "runtime", "onnx-int8"),
                str(getattr(embedder, "cache_dir", "")) or None)
        order = sorted(range(len(todo)), key=lambda i: -len(todo[i]))
        flat = [t for ts in texts for t in ts]
        jobs: list[tuple[str, tuple]] = []
        slices: list[tuple[str, list[int]]] = []
        for lo in range(0, len(order), self.slice_size):
            idx = order[lo : lo + self.slice_size]
            jobs.append(("embed", (spec, [todo[i] for i in idx], batch_size)))
            slices.append(("embed", idx))
        step = self.slice_size * 4
        for lo in range(0, len(flat), step):
            jobs.append(("terms", (flat[lo : lo + step],)))
            slices.append(("terms", list(range(lo, min(lo + step, len(flat))))))
        vecs = np.zeros((len(todo), int(embedder.dim)), dtype=np.float32) if todo else None
        terms: list[list[str]] = [[] for _ in flat]
        with tqdm(total=len(todo), desc=f"embedding chunks on {len(self.actors())} Ray workers", unit="chunk",
                  disable=not progress or not todo) as bar:
            def on_done(i: int, result) -> None:
                kind, idx = slices[i]
                if kind == "embed":
                    vecs[idx] = result
                    bar.update(len(idx))
                else:
                    for j, toks in zip(idx, result):
                        terms[j] = toks

            self._run(jobs, on_done, control, "embedding", len(jobs))
        nested, pos = [], 0
        for ts in texts:
            nested.append(terms[pos : pos + len(ts)])
            pos += len(ts)
        return vecs, nested
