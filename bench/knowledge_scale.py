"""The knowledge base at scale: embedding speed and quality per runtime, then a 10k- and a
100k-chunk domain — warm-up, hybrid query latency, one-file ingest, memory.

1. **Embedding** (real): the corpus in ../shared/data (sage_docs and sage_examples,
   ~2,400 chunks) is ingested once per embedding runtime — ``torch``
   (sentence-transformers, the old default) and ``onnx-int8`` (the default) — timing the
   whole ingest (chunks/s), and each resulting knowledge base answers both question sets
   (bench/questions_retrieval.yaml, ../shared/eval/foreign_dev.jsonl) in hybrid mode:
   ``embed_speedup`` is the ratio of the two ingest rates, with hit@5 per runtime beside it.
2. **Scale** (index-only figures on synthetic data, said so): a domain of 10k, then 100k
   chunks made of the real chunks repeated — their texts, terms and vectors, each vector
   with a little noise so the graph holds distinct points — written to the store, its
   indexes built as an old data dir's are at first open. Each size is then measured in a
   fresh child process, as a server would start: loading the embedding model and jieba's
   dictionary (fixed costs, timed apart), the knowledge manager's warm-up (the stores,
   the lexical index, the graph: what could grow with the corpus), hybrid
   query p50/p99 over both question sets (query embedding included), the process's RSS,
   and the ingest of one real file into the big domain, minus the time spent embedding
   its chunks (what the index costs, which the goal bounds).

    .venv/bin/python bench/knowledge_scale.py [--sizes 10000,100000] [--runtimes torch,onnx-int8]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_env import DATA, rss_mb  # noqa: E402  (first: puts the repository on sys.path)

import numpy as np  # noqa: E402

FOLDERS = {"sage_docs": "sage_docs", "examples": "sage_examples"}  # domain -> folder under DATA
ONE_FILE = DATA / "sage_docs" / "guides" / "packages" / "sage-kernel" / "faq.md"


def hit_at_5(km, sets: dict[str, list[dict]]) -> dict[str, float]:
    out = {}
    for name, qs in sets.items():
        found = []
        for q in qs:
            hits = km.search(q["q"], k=5)
            found.append(any(f"{FOLDERS[h.chunk.domain]}/{h.chunk.source}" in q["relevant"] for h in hits))
        out[name] = float(np.mean(found))
    return out


# ------------------------------------------------------------------ 1. embedding
def embedding(work: Path, runtimes: list[str], cache: Path) -> dict:
    from question_sets import question_sets

    from studio_nb.services.embeddings import Embedder
    from studio_nb.services.knowledge import KnowledgeManager

    sets = question_sets()
    out = {}
    for rt in runtimes:
        emb = Embedder(runtime=rt, cache_dir=cache)
        t0 = time.perf_counter()
        emb.warm_up()
        load = time.perf_counter() - t0
        km = KnowledgeManager(work / f"emb-{rt}", embedder=emb)
        km.warm_up()
        t0 = time.perf_counter()
        chunks = sum(km.ingest(DATA / folder, dom, progress=False).chunks_added for dom, folder in FOLDERS.items())
        secs = time.perf_counter() - t0
        out[rt] = {"load_s": load, "chunks": chunks, "ingest_s": secs, "chunks_per_s": chunks / secs,
                   "hit_at_5": hit_at_5(km, sets)}
        print(f"{rt:10s} load {load:5.1f} s  ingest {chunks} chunks in {secs:6.1f} s = {chunks / secs:6.1f} chunks/s  "
              f"hit@5 {out[rt]['hit_at_5']}", flush=True)
        km.close()
        emb.close()
    return out


# ------------------------------------------------------------------ 2. scale
def source_rows(data_dir: Path) -> list[tuple[str, str, str, np.ndarray]]:
    """(heading, text, terms, vector) of every chunk an ingest of the corpus made."""
    import sqlite3

    rows = []
    for dom in FOLDERS:
        db = sqlite3.connect(data_dir / "knowledge" / dom / "chunks.sqlite3")
        rows += [(h, t, tok, np.frombuffer(v, dtype=np.float32))
                 for h, t, tok, v in db.execute("SELECT heading, text, tokens, vector FROM chunks ORDER BY id")]
        db.close()
    return rows


def grow(data_dir: Path, rows: list, upto: int, dim: int) -> float:
    """Add synthetic files of 20 chunks until the domain ``scale`` holds ``upto`` chunks;
    the indexes are then built (or caught up) as at an old data dir's first open."""
    from studio_nb.services.knowledge.domain import Domain
    from studio_nb.services.knowledge.store import ChunkStore, NewChunk
    from studio_nb.services.knowledge.types import Piece

    path = data_dir / "knowledge" / "scale"
    path.mkdir(parents=True, exist_ok=True)
    store = ChunkStore(path / "chunks.sqlite3", "scale")
    if store.get_meta("dim") is None:
        store.set_meta(dim=dim, model="bench", generation=0, created_at=time.time(), updated_at=time.time(), owner="")
    have = store.counts()[1]
    rng = np.random.default_rng(have)
    t0 = time.perf_counter()
    n_file = have // 20
    while have < upto:
        new = []
        for j in range(20):
            h, text, terms, vec = rows[(have + j) % len(rows)]
            v = vec + rng.normal(0, 0.02, vec.shape).astype(np.float32)
            new.append(NewChunk(Piece(h, 1, 1, text, "text"), f"{n_file}-{j}", terms.split(" "), v / np.linalg.norm(v)))
        store.replace_file("/bench", f"copy{n_file}/file.md", str(n_file), 1, new, time.time())
        have += len(new)
        n_file += 1
    store.set_meta(generation=int(store.get_meta("generation", "0")) + 1)  # the indexes are behind: caught up at open
    store.close()
    dom = Domain.open("scale", path)
    dom.close()
    return time.perf_counter() - t0


def measure(data_dir: Path, cache: Path) -> dict:
    """In a fresh process: warm-up, hybrid query latency, RSS, one-file ingest."""
    from question_sets import question_sets

    from studio_nb.services.embeddings import Embedder
    from studio_nb.services.knowledge import KnowledgeManager

    out: dict = {"rss_start_mb": rss_mb()}
    t0 = time.perf_counter()
    emb = Embedder(cache_dir=cache)
    emb.warm_up()
    out["embedder_load_s"] = time.perf_counter() - t0
    from studio_nb.services import tokenizer

    t0 = time.perf_counter()
    tokenizer.warm_up()  # jieba's dictionary: the one tokenizer's fixed cost, the same at any size
    out["jieba_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    km = KnowledgeManager(data_dir, embedder=emb)
    km.warm_up()  # what grows with the corpus, if anything: the stores, the lexical index, the graph
    out["warm_up_s"] = time.perf_counter() - t0
    out["chunks"] = km.domains()[0].chunks
    queries = [q["q"] for qs in question_sets().values() for q in qs]
    km.search(queries[0], domains=["scale"], k=5)
    lat = []
    for q in queries:
        t0 = time.perf_counter()
        km.search(q, domains=["scale"], k=5)
        lat.append((time.perf_counter() - t0) * 1000)
    out["query_p50_ms"], out["query_p99_ms"] = float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
    out["rss_mb"] = rss_mb()

    class Timed:  # the embedder, timing what it spends embedding
        spent = 0.0
        dim = emb.dim

        def encode(self, texts, batch_size=None, progress=False):
            t = time.perf_counter()
            try:
                return emb.encode(texts, batch_size=batch_size, progress=progress)
            finally:
                Timed.spent += time.perf_counter() - t

    km._embedder = Timed()
    one = Path(tempfile.mkdtemp(prefix="one-file-"))
    shutil.copy(ONE_FILE, one / ONE_FILE.name)
    t0 = time.perf_counter()
    rep = km.ingest(one, "scale", progress=False)
    total = time.perf_counter() - t0
    out["one_file"] = {"chunks": rep.chunks_added, "total_s": total, "embedding_s": Timed.spent,
                       "beyond_embedding_s": total - Timed.spent}
    km.close()
    shutil.rmtree(one, ignore_errors=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--runtimes", default="torch,onnx-int8")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(Path(args.child[0]), Path(args.child[1]))))
        return 0
    from studio_nb.services.embeddings import embedding_cache_dir

    cache = embedding_cache_dir()
    work = Path(tempfile.mkdtemp(prefix="knowledge-scale-"))
    results: dict = {"cpu_count": os.cpu_count(), "load_avg_start": os.getloadavg()}
    try:
        runtimes = args.runtimes.split(",")
        results["embedding"] = embedding(work, runtimes, cache)
        rows = source_rows(work / f"emb-{runtimes[-1]}")
        dim = len(rows[0][3])
        scale_dir = work / "scale"
        results["scale"] = {}
        for size in [int(s) for s in args.sizes.split(",") if s]:
            built = grow(scale_dir, rows, size, dim)
            proc = subprocess.run([sys.executable, __file__, "--child", str(scale_dir), str(cache)],
                                  capture_output=True, text=True, timeout=1800)
            if proc.returncode != 0:
                print(f"measuring {size} failed:\n{proc.stderr[-3000:]}", flush=True)
                return 1
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["build_s"] = built
            results["scale"][size] = r
            print(f"{r['chunks']:>7,} chunks (built in {built:5.0f} s): embedder load {r['embedder_load_s']:.2f} s, "
                  f"jieba {r['jieba_s']:.2f} s, knowledge warm-up {r['warm_up_s']:.2f} s, hybrid query p50 {r['query_p50_ms']:.1f} ms "
                  f"p99 {r['query_p99_ms']:.1f} ms, RSS {r['rss_mb']:.0f} MB, one file ({r['one_file']['chunks']} chunks) "
                  f"{r['one_file']['total_s']:.2f} s of which embedding {r['one_file']['embedding_s']:.2f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_avg_end"] = os.getloadavg()
    save(results)
    return 0


def save(results: dict) -> None:
    from figures import figure, save as save_figures

    figures = []
    emb = results["embedding"]
    fast, base = emb.get("onnx-int8"), emb.get("torch")
    if fast:
        hits = ", ".join(f"{rt} {v['hit_at_5']}" for rt, v in emb.items())
        figures.append(figure("embed_chunks_per_s", fast["chunks_per_s"], "chunks/s",
                              note=f"whole ingest of the corpus ({fast['chunks']} chunks), onnx-int8; hit@5 {hits}"))
        if base:
            figures.append(figure("embed_speedup", fast["chunks_per_s"], "chunks/s", baseline=base["chunks_per_s"],
                                  goal="ratio >= 2", note="onnx-int8 vs torch (sentence-transformers), whole ingest"))
            for qs in fast["hit_at_5"]:
                delta = fast["hit_at_5"][qs] - base["hit_at_5"][qs]
                figures.append(figure(f"embed_hit_at_5_delta_{qs}", delta, "share", goal=">= -0.01",
                                      note=f"hybrid hit@5 onnx-int8 {fast['hit_at_5'][qs]:.3f} vs torch "
                                      f"{base['hit_at_5'][qs]:.3f}"))
    for size, r in results["scale"].items():
        tag = f"{int(size) // 1000}k"
        synthetic = "the real chunks repeated (vectors with noise)"
        goals = {"warm_up": "<= 2", "p50": "<= 30", "p99": "<= 150", "one": "<= 1"} if tag == "100k" else {}
        figures += [
            figure(f"knowledge_warm_up_{tag}", r["warm_up_s"], "s", goal=goals.get("warm_up"),
                   note=f"KnowledgeManager.warm_up on {r['chunks']:,} chunks ({synthetic}): stores, lexical "
                   f"index, graph; before it, in the same process: the embedding model {r['embedder_load_s']:.2f} s, "
                   f"jieba's dictionary {r['jieba_s']:.2f} s (fixed costs, any corpus size)"),
            figure(f"knowledge_query_p50_{tag}", r["query_p50_ms"], "ms", goal=goals.get("p50"),
                   note="hybrid search, query embedding included, both question sets"),
            figure(f"knowledge_query_p99_{tag}", r["query_p99_ms"], "ms", goal=goals.get("p99")),
            figure(f"knowledge_rss_{tag}", r["rss_mb"], "MB", note="the whole process after warm-up and queries"),
            figure(f"knowledge_one_file_ingest_{tag}", r["one_file"]["beyond_embedding_s"], "s", goal=goals.get("one"),
                   note=f"one real file ({r['one_file']['chunks']} chunks) into the domain, beyond its embedding "
                   f"({r['one_file']['embedding_s']:.2f} s)"),
        ]
    save_figures("knowledge_scale", figures, results)


if __name__ == "__main__":
    sys.exit(main())
