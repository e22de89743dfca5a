"""Lexical engines side by side on the same chunks: the in-memory BM25 studio-nb used to
rebuild at every start, SQLite FTS5, bm25s and tantivy (what the knowledge base now uses).

Every engine indexes the same pre-tokenised chunks (the real corpus in ../shared/data,
split and tokenised exactly as an ingest does: ``services.tokenizer``, jieba for Chinese)
and answers the same queries. Measured per engine:

- hit@5 on the real corpus (~2,400 chunks, lexical retrieval alone) for
  bench/questions_retrieval.yaml and ../shared/eval/foreign_dev.jsonl (its ``relevant``);
- at 10k and 100k chunks (the real chunks' terms repeated — their hit@5 means nothing,
  only their cost does): build time, warm-up (what a process pays before its first
  answer: open what is on disk, or rebuild it), query p50/p99 over both question sets,
  the process's resident memory after warm-up and queries (each size and engine in its
  own child process, so the figures do not mix), the index's bytes on disk, and the
  cost of replacing one file's chunks (incremental where the engine allows it, a rebuild
  where it does not).

    .venv/bin/python bench/lexical_engines.py [--sizes 10000,100000] [--engines tantivy,fts5,bm25s,memory]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_env import DATA, rss_mb  # noqa: E402  (first: puts the repository on sys.path)

ENGINES = ("tantivy", "fts5", "bm25s", "memory")


def prepare(path: Path) -> None:
    """The real corpus's chunks (source as a corpus path, terms) and the questions' terms."""
    from studio_nb.services.knowledge.ignore import IgnoreRules, walk_files
    from studio_nb.services.knowledge.ingest import embed_text
    from studio_nb.services.knowledge.split_text import SplitConfig
    from studio_nb.services.knowledge.splitters import SkipFile, split_file, supported
    from studio_nb.services.tokenizer import tokenize

    chunks = []
    for folder in ("sage_docs", "sage_examples"):
        root = DATA / folder
        for file, rel in walk_files(root, IgnoreRules.from_root(root)):
            if not supported(file):
                continue
            try:
                pieces = split_file(file, file.read_bytes(), SplitConfig())
            except SkipFile:
                continue
            chunks += [(f"{folder}/{rel}", tokenize(embed_text(rel, p))) for p in pieces]
    from question_sets import question_sets

    qs = {name: [(q["relevant"], tokenize(q["q"])) for q in items] for name, items in question_sets().items()}
    path.write_bytes(pickle.dumps({"chunks": chunks, "questions": qs}))


# ------------------------------------------------------------------ engines
class Memory:
    """The in-memory BM25 studio-nb rebuilt from the stored terms at every start."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def build(self, docs: list[list[str]]) -> None:
        (self.folder / "tokens.txt").write_text("\n".join(" ".join(t) for t in docs), encoding="utf-8")
        self.open()

    def open(self) -> None:  # what a start paid: read the stored terms, build the postings
        from inmemory_bm25 import BM25Index

        lines = (self.folder / "tokens.txt").read_text(encoding="utf-8").split("\n")
        self.docs = [line.split(" ") if line else [] for line in lines]
        self.index = BM25Index(enumerate(self.docs))

    def search(self, tokens: list[str], k: int) -> list[int]:
        return [i for i, _ in self.index.search(tokens, k)]

    def replace(self, ids: list[int], docs: list[list[str]]) -> None:  # immutable: rebuilt whole
        from inmemory_bm25 import BM25Index

        for i, d in zip(ids, docs):
            self.docs[i] = d
        self.index = BM25Index(enumerate(self.docs))


def _store_with(path: Path, docs: list[list[str]]):
    """A chunk store (the knowledge base's schema) holding ``docs`` as chunk ids 1..n."""
    from studio_nb.services.knowledge.store import ChunkStore

    store = ChunkStore(path, "bench")
    with store._conn() as db:
        db.execute("INSERT INTO files (id, root, source, hash, size, n_chunks, ingested_at) VALUES (1, '/', 'all', '', 0, 0, 0)")
        db.executemany(_INSERT, ((i + 1, " ".join(d)) for i, d in enumerate(docs)))
    return store


_INSERT = ("INSERT INTO chunks (id, file_id, source, heading, start_line, end_line, text, kind, hash, tokens, vector)"
           " VALUES (?, 1, 'all', '', 0, 0, '', 'text', '', ?, x'')")


class Tantivy:
    """The knowledge base's lexical path: tantivy's candidates (lexical_index.py) scored by
    bm25.py from the chunk store's terms."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def build(self, docs: list[list[str]]) -> None:
        from studio_nb.services.knowledge.lexical_index import LexicalIndex

        store = _store_with(self.folder / "chunks.sqlite3", docs)
        LexicalIndex(self.folder / "lexical").rebuild(store.all_terms())
        store.close()
        self.open()

    def open(self) -> None:
        from studio_nb.services.knowledge.lexical_index import LexicalIndex
        from studio_nb.services.knowledge.store import ChunkStore

        self.store = ChunkStore(self.folder / "chunks.sqlite3", "bench")
        self.index = LexicalIndex(self.folder / "lexical")
        self.index.open()

    def search(self, tokens: list[str], k: int) -> list[int]:
        from studio_nb.services.knowledge import bm25

        return [i - 1 for i, _ in bm25.search(self.index, self.store, tokens, k)]

    def replace(self, ids: list[int], docs: list[list[str]]) -> None:  # the rows of one file, in place
        rows = [(i + 1, " ".join(d)) for i, d in zip(ids, docs)]
        with self.store._conn() as db:
            db.executemany("DELETE FROM chunks WHERE id=?", [(i,) for i, _ in rows])
            db.executemany(_INSERT, rows)
        self.index.update([i for i, _ in rows], rows)


class Fts5:
    """SQLite FTS5 over the same terms (external content: postings only), ranked by its own
    bm25() over an OR of the query terms; triggers keep it in step with the chunks."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "chunks.sqlite3"

    def build(self, docs: list[list[str]]) -> None:
        store = _store_with(self.path, docs)
        with store._conn() as db:
            db.executescript("""
                CREATE VIRTUAL TABLE chunks_fts USING fts5(tokens, content='chunks', content_rowid='id',
                    tokenize="unicode61 remove_diacritics 0 tokenchars '._'");
                CREATE TRIGGER chunks_fts_add AFTER INSERT ON chunks BEGIN
                    INSERT INTO chunks_fts(rowid, tokens) VALUES (new.id, new.tokens); END;
                CREATE TRIGGER chunks_fts_drop AFTER DELETE ON chunks BEGIN
                    INSERT INTO chunks_fts(chunks_fts, rowid, tokens) VALUES ('delete', old.id, old.tokens); END;
                INSERT INTO chunks_fts(chunks_fts) VALUES ('rebuild');""")
        store.close()
        self.open()

    def open(self) -> None:
        from studio_nb.services.knowledge.store import ChunkStore

        self.store = ChunkStore(self.path, "bench")

    def search(self, tokens: list[str], k: int) -> list[int]:
        quoted = ['"' + t.replace('"', '""') + '"' for t in dict.fromkeys(tokens) if t]
        if not quoted:
            return []
        rows = self.store._conn().execute(
            "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?", (" OR ".join(quoted), k))
        return [i - 1 for (i,) in rows]

    def replace(self, ids: list[int], docs: list[list[str]]) -> None:  # the rows of one file, in place
        with self.store._conn() as db:
            db.executemany("DELETE FROM chunks WHERE id=?", [(i + 1,) for i in ids])
            db.executemany(_INSERT, [(i + 1, " ".join(d)) for i, d in zip(ids, docs)])


class Bm25s:
    """bm25s (scipy sparse matrices of precomputed scores), saved and memory-mapped back."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "bm25s"

    def build(self, docs: list[list[str]]) -> None:
        import bm25s

        self.docs = docs
        self.retriever = bm25s.BM25(k1=1.2, b=0.75, method="lucene")
        self.retriever.index(self._tokenized(docs), show_progress=False)
        self.retriever.save(str(self.folder))
        self.open()

    def _tokenized(self, docs: list[list[str]]):
        import bm25s

        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(t, len(vocab)) for t in d] for d in docs]
        return bm25s.tokenization.Tokenized(ids=ids, vocab=vocab)

    def open(self) -> None:
        import bm25s

        self.retriever = bm25s.BM25.load(str(self.folder), mmap=True)
        self.vocab = self.retriever.vocab_dict

    def search(self, tokens: list[str], k: int) -> list[int]:
        known = [t for t in tokens if t in self.vocab]
        if not known:
            return []
        k = min(k, self.retriever.scores["num_docs"])
        res, scores = self.retriever.retrieve([known], k=k, show_progress=False, n_threads=1)
        return [int(i) for i, s in zip(res[0], scores[0]) if s > 0]

    def replace(self, ids: list[int], docs: list[list[str]]) -> None:  # no incremental update: rebuilt
        full = list(getattr(self, "docs", []))
        for i, d in zip(ids, docs):
            full[i] = d
        self.build(full)


def engine(name: str, folder: Path):
    return {"memory": Memory, "fts5": Fts5, "bm25s": Bm25s, "tantivy": Tantivy}[name](folder)


# ------------------------------------------------------------------ one measurement (child process)
def measure(name: str, size: int, data_file: Path, work: Path) -> dict:
    import numpy as np

    data = pickle.loads(data_file.read_bytes())
    real = data["chunks"]
    docs = [real[i % len(real)][1] for i in range(size)] if size else [t for _, t in real]
    sources = [s for s, _ in real]
    rss0 = rss_mb()
    folder = work / f"{name}-{size}"
    folder.mkdir(parents=True, exist_ok=True)
    eng = engine(name, folder)
    t0 = time.perf_counter()
    eng.build(docs)
    build_s = time.perf_counter() - t0
    if name == "bm25s":
        eng.docs = docs
    del eng
    eng = engine(name, folder)
    if name == "bm25s":
        eng.docs = docs
    rss1 = rss_mb()
    t0 = time.perf_counter()
    eng.open()
    first = [q for _, q in next(iter(data["questions"].values()))][0]
    eng.search(first, 50)
    warm_s = time.perf_counter() - t0
    out = {"engine": name, "chunks": len(docs), "build_s": build_s, "warm_up_s": warm_s}
    lat, hits = [], {}
    for set_name, qs in data["questions"].items():
        found = []
        for relevant, tokens in qs:
            t0 = time.perf_counter()
            top = eng.search(tokens, 50)
            lat.append((time.perf_counter() - t0) * 1000)
            found.append(any(sources[i % len(sources)] in relevant for i in top[:5]))
        hits[set_name] = float(np.mean(found))
    out["query_p50_ms"], out["query_p99_ms"] = float(np.percentile(lat, 50)), float(np.percentile(lat, 99))
    if not size:
        out["hit_at_5"] = hits
    out["rss_mb"] = rss_mb() - rss1
    out["rss_total_mb"] = rss_mb()
    out["rss_before_mb"] = rss0
    out["disk_mb"] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 1e6
    ids = list(range(min(20, len(docs))))  # one file's chunks
    t0 = time.perf_counter()
    eng.replace(ids, [docs[-1 - i] for i in ids])
    out["replace_one_file_s"] = time.perf_counter() - t0
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000", help="chunk counts for the cost figures (0 = the real corpus)")
    ap.add_argument("--engines", default=",".join(ENGINES))
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        name, size, data_file, work = args.child
        print(json.dumps(measure(name, int(size), Path(data_file), Path(work))))
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="lexical-engines-"))
    rows = []
    try:
        data_file = tmp / "chunks.pickle"
        t0 = time.perf_counter()
        prepare(data_file)
        print(f"corpus split and tokenised in {time.perf_counter() - t0:.1f} s", flush=True)
        for size in [0] + [int(s) for s in args.sizes.split(",") if s]:
            for name in args.engines.split(","):
                proc = subprocess.run([sys.executable, __file__, "--child", name, str(size), str(data_file), str(tmp)],
                                      capture_output=True, text=True, timeout=1800)
                if proc.returncode != 0:
                    print(f"{name} at {size or 'real'}: failed\n{proc.stderr[-2000:]}", flush=True)
                    continue
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                rows.append(row)
                hit = " ".join(f"{k} {v:.3f}" for k, v in row.get("hit_at_5", {}).items())
                print(f"{name:6s} {row['chunks']:>7,} chunks  build {row['build_s']:6.1f} s  warm-up {row['warm_up_s']:6.2f} s  "
                      f"p50 {row['query_p50_ms']:6.1f} ms  p99 {row['query_p99_ms']:6.1f} ms  rss +{row['rss_mb']:5.0f} MB  "
                      f"disk {row['disk_mb']:6.1f} MB  one file {row['replace_one_file_s']:6.2f} s  {hit}", flush=True)
                shutil.rmtree(tmp / f"{name}-{size}", ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    from figures import figure, save

    def pick(name: str, size_min: int):
        return next((r for r in rows if r["engine"] == name and r["chunks"] >= size_min), None)

    figures = []
    big = max((r["chunks"] for r in rows), default=0)
    for name in args.engines.split(","):
        r, real = pick(name, big), next((x for x in rows if x["engine"] == name and "hit_at_5" in x), None)
        if r is None or real is None:
            continue
        figures.append(figure(f"lexical_{name}_warm_up_{big // 1000}k", r["warm_up_s"], "s",
                              note=f"p50 {r['query_p50_ms']:.1f} ms, p99 {r['query_p99_ms']:.1f} ms, +{r['rss_mb']:.0f} MB, "
                              f"one file {r['replace_one_file_s']:.2f} s; hit@5 "
                              + ", ".join(f"{k} {v:.3f}" for k, v in real["hit_at_5"].items())))
    save("lexical_engines", figures, {"rows": rows, "cpu_count": os.cpu_count(), "load_avg": os.getloadavg()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
