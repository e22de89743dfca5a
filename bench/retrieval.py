"""Retrieval benchmark for the knowledge service, on the real corpus in ../shared/data.

Run from the repo root:  .venv/bin/python bench/retrieval.py  [--max-files N]

Measures, in one process:
- ingestion throughput (chunks/s) against the raw model (``Embedder``'s runtime, ONNX by
  default) encoding exactly the same chunk texts (goal: >= 0.9x — everything but the
  model must be cheap);
- query latency p50/p95 per mode;
- hnswlib recall@10 against exact brute-force numpy search over the stored vectors;
- index size (hnswlib graph; the SQLite file with chunks, vectors and the FTS5 index);
- answer-source quality: hit@5 (a relevant file among the top 5 sources) on
  bench/questions_retrieval.yaml, for dense, lexical and hybrid (both fusion methods and
  several Chinese dense weights) side by side, and a naive baseline: fixed 800-character
  chunks with no headings, dense + BM25 fused by RRF.
Prints a table and writes bench/results/retrieval.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import yaml  # noqa: E402

from studio_nb.services.embeddings import Embedder  # noqa: E402
from studio_nb.services.knowledge import KnowledgeManager  # noqa: E402
from studio_nb.services.knowledge.fusion import fuse  # noqa: E402
from studio_nb.services.knowledge.ingest import embed_text  # noqa: E402
from studio_nb.services.tokenizer import tokenize  # noqa: E402
from inmemory_bm25 import BM25Index  # noqa: E402  (the naive baseline's lexical half)
from studio_nb.services.knowledge.splitters import supported  # noqa: E402
from studio_nb.services.knowledge.types import Piece  # noqa: E402

DATA = (REPO / ".." / "shared" / "data").resolve()
DOMAINS = {"sage_docs": "sage_docs", "examples": "sage_examples"}  # domain -> folder under DATA
QUESTIONS = REPO / "bench" / "questions_retrieval.yaml"
RESULTS = REPO / "bench" / "results" / "retrieval.json"


def corpus_path(domain: str, source: str) -> str:
    return f"{DOMAINS[domain]}/{source}"


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def prepare_corpus(tmp: Path, max_files: int | None) -> dict[str, Path]:
    """The folders to ingest: the real ones, or (for a quick try) their first N files."""
    if not max_files:
        return {d: DATA / f for d, f in DOMAINS.items()}
    out = {}
    for d, f in DOMAINS.items():
        files = sorted(p for p in (DATA / f).rglob("*") if p.is_file() and supported(p))[:max_files]
        for p in files:
            dest = tmp / "corpus" / f / p.relative_to(DATA / f)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(p, dest)
        out[d] = tmp / "corpus" / f
    return out


def chunk_texts(folders: dict[str, Path]) -> list[str]:
    """The texts an ingest of ``folders`` embeds (same splitter, same title prefix)."""
    from studio_nb.services.knowledge.ignore import IgnoreRules, walk_files
    from studio_nb.services.knowledge.split_text import SplitConfig
    from studio_nb.services.knowledge.splitters import SkipFile, split_file

    texts = []
    for root in folders.values():
        for path, rel in walk_files(root, IgnoreRules.from_root(root)):
            if supported(path):
                try:
                    texts += [embed_text(rel, p) for p in split_file(path, path.read_bytes(), SplitConfig())]
                except SkipFile:
                    pass
    return texts


def raw_encode_rate(embedder, texts: list[str]) -> float:
    t0 = time.perf_counter()
    embedder.encode(texts, batch_size=32)  # more than a few texts: straight to the model, no cache
    return len(texts) / (time.perf_counter() - t0)


def bench_ingest(km: KnowledgeManager, folders: dict[str, Path], embedder, raw_share: float) -> dict:
    """Ingest throughput against raw encoding of the same chunk texts.

    The machine is shared, so its speed drifts: raw encoding runs on a random sample
    (``raw_share`` of the chunks, same length distribution) both right before and right
    after the ingest, and the ingest is compared with the mean of the two rates.
    """
    texts = chunk_texts(folders)
    rng = np.random.default_rng(1)
    model = embedder
    before = raw_encode_rate(model, [texts[i] for i in rng.choice(len(texts), max(1, int(len(texts) * raw_share)), replace=False)])
    t0 = time.perf_counter()
    reports = {d: km.ingest(path, d, progress=True) for d, path in folders.items()}
    ingest_s = time.perf_counter() - t0
    after = raw_encode_rate(model, [texts[i] for i in rng.choice(len(texts), max(1, int(len(texts) * raw_share)), replace=False)])
    chunks = sum(r.chunks_added for r in reports.values())
    raw = (before + after) / 2
    return {
        "files": sum(r.files_seen for r in reports.values()),
        "chunks": chunks,
        "texts_split_by_bench": len(texts),
        "errors": [e for r in reports.values() for e in r.errors],
        "ingest_seconds": ingest_s,
        "ingest_chunks_per_s": chunks / ingest_s,
        "raw_encode_chunks_per_s_before": before,
        "raw_encode_chunks_per_s_after": after,
        "raw_encode_chunks_per_s": raw,
        "ratio": (chunks / ingest_s) / raw,
        "mean_chunk_chars": float(np.mean([len(t) for t in texts])),
    }


def bench_recall(km: KnowledgeManager, query_vecs: np.ndarray, k: int = 10) -> dict:
    """hnswlib top-k against exact cosine top-k over the stored vectors."""
    out = {}
    rng = np.random.default_rng(0)
    for d, dom in km._domains.items():
        ids, vecs = dom.store.all_vectors(dom.dim)
        probes = vecs[rng.choice(len(vecs), size=min(200, len(vecs)), replace=False)]
        queries = np.vstack([query_vecs, probes + rng.normal(0, 0.02, probes.shape).astype(np.float32)])
        found = total = 0
        for q in queries:
            exact = set(ids[np.argsort(-(vecs @ q))[:k]].tolist())
            approx = {i for i, _ in dom.vectors.search(q, k)}
            found += len(exact & approx)
            total += len(exact)
        out[d] = found / total
    return out


def bench_memory(km: KnowledgeManager) -> dict:
    out = {}
    for d, dom in km._domains.items():
        info = dom.info()
        out[d] = {
            "chunks": info.chunks,
            "hnsw_bytes": info.index_bytes,
            "sqlite_bytes": (dom.path / "chunks.sqlite3").stat().st_size,
        }
    return out


def hit_at_5(rank_fn, questions: list[dict]) -> tuple[dict, list[float]]:
    """hit@5 per language and overall, plus per-query latency."""
    hits = {"en": [], "zh": []}
    lat = []
    for q in questions:
        t0 = time.perf_counter()
        sources = rank_fn(q["q"])
        lat.append((time.perf_counter() - t0) * 1000)
        hits[q["lang"]].append(any(s in q["relevant"] for s in sources[:5]))
    scores = {lang: float(np.mean(v)) for lang, v in hits.items()}
    scores["all"] = float(np.mean(hits["en"] + hits["zh"]))
    return scores, lat


def km_ranker(km: KnowledgeManager, mode: str):
    return lambda text: [corpus_path(h.chunk.domain, h.chunk.source) for h in km.search(text, k=5, mode=mode)]


class NaiveBaseline:
    """Fixed 800-character chunks of raw text (no headings, no paths), brute-force dense +
    BM25 with the same CJK tokenizer, fused by RRF: what the structure-aware pipeline
    must beat."""

    def __init__(self, folders: dict[str, Path], embedder, size: int = 800) -> None:
        self.sources, texts = [], []
        for d, root in folders.items():
            for p in sorted(root.rglob("*")):
                if p.is_file() and p.suffix in {".md", ".py"} and not any(part in {".git", "__pycache__"} for part in p.parts):
                    text = p.read_text(encoding="utf-8", errors="replace")
                    for i in range(0, len(text), size):
                        self.sources.append(corpus_path(d, p.relative_to(root).as_posix()))
                        texts.append(text[i : i + size])
        t0 = time.perf_counter()
        self.vecs = embedder.encode(texts, batch_size=32)
        self.embed_s = time.perf_counter() - t0
        self.bm25 = BM25Index((i, tokenize(t)) for i, t in enumerate(texts))
        self.embedder, self.n = embedder, len(texts)

    def rank(self, text: str) -> list[str]:
        sims = self.vecs @ self.embedder.encode([text])[0]
        top = np.argsort(-sims)[:50]
        dense = [(int(i), float(sims[i])) for i in top]
        lexical = self.bm25.search(tokenize(text), 50)
        return [self.sources[i] for i, _ in fuse(dense, lexical, "rrf")[:5]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-files", type=int, default=None, help="only the first N files per folder (quick try)")
    ap.add_argument("--no-baseline", action="store_true", help="skip the naive 800-char baseline")
    ap.add_argument("--raw-share", type=float, default=0.25, help="share of chunks raw-encoded before and after ingest")
    args = ap.parse_args()
    questions = yaml.safe_load(QUESTIONS.read_text(encoding="utf-8"))["questions"]
    tmp = Path(tempfile.mkdtemp(prefix="retrieval-bench-"))
    results: dict = {"corpus": str(DATA), "questions": len(questions), "cpu_count": os.cpu_count()}
    try:
        folders = prepare_corpus(tmp, args.max_files)
        embedder = Embedder()
        km = KnowledgeManager(tmp / "data", embedder=embedder)
        t0 = time.perf_counter()
        km.warm_up()
        results["warm_up_seconds"] = time.perf_counter() - t0
        results["ingest"] = bench_ingest(km, folders, embedder, args.raw_share)

        t0 = time.perf_counter()
        km2 = KnowledgeManager(tmp / "data", embedder=embedder)
        km2.warm_up()
        results["reload_seconds"] = time.perf_counter() - t0  # indexes from disk
        km2.close()

        qvecs = embedder.encode([q["q"] for q in questions])
        results["recall_at_10"] = bench_recall(km, qvecs)
        results["memory"] = bench_memory(km)

        quality, latency = {}, {}
        default = (km.fusion, km.cjk_dense_weight)
        variants = [("dense", "dense", *default), ("lexical", "lexical", *default)] + [
            (f"hybrid {f} w_zh={w}" + (" (default)" if (f, w) == default else ""), "hybrid", f, w)
            for f in ("rrf", "score") for w in (1.0, 0.5, 0.25)
        ]
        for name, mode, fusion, w in variants:
            km.fusion, km.cjk_dense_weight = fusion, w
            km_ranker(km, mode)(questions[0]["q"])  # warm
            quality[name], latency[name] = hit_at_5(km_ranker(km, mode), questions)
        km.fusion, km.cjk_dense_weight = default
        misses = [q["id"] for q in questions if not any(s in q["relevant"] for s in km_ranker(km, "hybrid")(q["q"]))]
        results["hybrid_misses"] = misses
        if not args.no_baseline:
            base = NaiveBaseline(folders, embedder)
            results["naive_baseline"] = {"chunks": base.n, "embed_seconds": base.embed_s}
            quality["naive 800-char dense+bm25 rrf"], latency["naive 800-char dense+bm25 rrf"] = hit_at_5(base.rank, questions)
        results["hit_at_5"] = quality
        results["latency_ms"] = {k: {"p50": pct(v, 50), "p95": pct(v, 95)} for k, v in latency.items()}
        km.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(results)
    from figures import figure

    ing, hybrid = results["ingest"], next(v for k, v in results["hit_at_5"].items() if k.endswith("(default)"))
    results["figures"] = [
        figure("ingest_ratio", ing["ingest_chunks_per_s"], "chunks/s", baseline=ing["raw_encode_chunks_per_s"],
               goal="ratio >= 0.9", note="whole ingest vs the raw embedding model on the same chunks"),
        figure("retrieval_hit_at_5", hybrid["all"], "share", goal=">= 0.9",
               note=f"hybrid; en {hybrid['en']:.3f}, zh {hybrid['zh']:.3f}"),
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"\nwrote {RESULTS.relative_to(REPO)}")


def report(r: dict) -> None:
    ing = r["ingest"]
    print("\n== ingestion ==")
    print(f"files {ing['files']}  chunks {ing['chunks']}  mean chunk {ing['mean_chunk_chars']:.0f} chars  errors {len(ing['errors'])}")
    print(f"ingest  {ing['ingest_seconds']:.1f} s  {ing['ingest_chunks_per_s']:6.1f} chunks/s")
    print(f"raw ST  {ing['raw_encode_chunks_per_s']:6.1f} chunks/s (before {ing['raw_encode_chunks_per_s_before']:.1f}, "
          f"after {ing['raw_encode_chunks_per_s_after']:.1f}; same texts, random sample)")
    print(f"ratio ingest/raw = {ing['ratio']:.2f}x (goal >= 0.9)   warm_up {r['warm_up_seconds']:.1f} s   reload {r['reload_seconds']:.2f} s")
    print("\n== hnswlib recall@10 vs exact ==")
    for d, v in r["recall_at_10"].items():
        print(f"{d:10s} {v:.4f}")
    print("\n== index memory (bytes) ==")
    for d, m in r["memory"].items():
        print(f"{d:10s} chunks {m['chunks']:5d}  hnsw {m['hnsw_bytes']:>10,}  sqlite (with FTS5) {m['sqlite_bytes']:>10,}")
    print(f"\n== hit@5 on {r['questions']} questions, and query latency ==")
    print(f"{'method':34s} {'all':>6s} {'en':>6s} {'zh':>6s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for name, q in r["hit_at_5"].items():
        lat = r["latency_ms"][name]
        print(f"{name:34s} {q['all']:6.3f} {q['en']:6.3f} {q['zh']:6.3f} {lat['p50']:8.1f} {lat['p95']:8.1f}")
    print(f"hybrid (default) misses: {', '.join(r['hybrid_misses']) or 'none'}")


if __name__ == "__main__":
    main()
