"""Ingestion on Ray with 1 and 2 workers: does it grow with the cluster?

A local Ray cluster (``--cpus`` CPUs) ingests the same folder of the real corpus twice
into fresh data dirs, with ``RayWork(workers=1)`` and ``RayWork(workers=2)`` (one CPU and
one onnxruntime thread per worker); then, for reference, the same folder in this process
(``LocalWork``, onnxruntime on all cores). Reported: chunks/s of each and the 2-vs-1
ratio. On a 2-core machine the point is that it scales, not the absolute rate. Not part
of ``make bench`` (starting Ray takes tens of seconds): run it by hand.

    .venv/bin/python bench/ray_ingest.py [--folder sage_docs] [--cpus 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_env import DATA  # noqa: E402  (first: puts the repository on sys.path)



def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--folder", default="sage_docs", help="a folder of ../shared/data")
    ap.add_argument("--cpus", type=int, default=2)
    args = ap.parse_args()
    import ray

    from studio_nb.kernel.ray_startup import start_with_retries
    from studio_nb.services.embeddings import Embedder
    from studio_nb.services.knowledge import KnowledgeManager
    from studio_nb.services.knowledge.ray_ingest import RayWork

    start_with_retries(lambda: ray.init(num_cpus=args.cpus, include_dashboard=False,
                                        object_store_memory=200 * 1024**2), ray.shutdown)
    tmp = Path(tempfile.mkdtemp(prefix="ray-ingest-"))
    emb = Embedder()
    emb.warm_up()  # the export, if any, is made here, not timed
    rows = {}
    try:
        for label, workers in (("ray 1 worker", 1), ("ray 2 workers", 2), ("local", None)):
            km = KnowledgeManager(tmp / label.replace(" ", "_"), embedder=emb)
            km.warm_up()
            work = RayWork(workers=workers) if workers else None
            if work is not None:
                work.actors()  # start the workers before the clock
            t0 = time.perf_counter()
            rep = km.ingest(DATA / args.folder, "d", progress=False, work=work)
            secs = time.perf_counter() - t0
            rows[label] = {"chunks": rep.chunks_added, "seconds": secs, "chunks_per_s": rep.chunks_added / secs}
            if work is not None:
                rows[label]["workers"] = work.stats()
                work.close()
            km.close()
            print(f"{label:14s} {rep.chunks_added} chunks in {secs:6.1f} s = {rep.chunks_added / secs:6.1f} chunks/s", flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    from figures import figure, save

    one, two = rows["ray 1 worker"], rows["ray 2 workers"]
    figures = [
        figure("ray_ingest_2_workers", two["chunks_per_s"], "chunks/s", baseline=one["chunks_per_s"], goal="ratio >= 1.3",
               note=f"{args.folder} on a local Ray cluster of {args.cpus} CPUs; 1 worker {one['chunks_per_s']:.1f} "
               f"chunks/s; this process alone {rows['local']['chunks_per_s']:.1f} chunks/s"),
    ]
    save("ray_ingest", figures, {"rows": rows, "cpu_count": os.cpu_count(), "load_avg": os.getloadavg()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
