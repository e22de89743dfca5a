"""A knowledge domain written before the persisted lexical index existed opens, is migrated
once (its chunks and terms counted, its stored terms indexed by tantivy) and searches as
before; nothing is re-embedded."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
from kb_helpers import CountingEmbedder, HashEmbedder

from studio_nb.services.knowledge import KnowledgeManager
from studio_nb.services.knowledge.ingest import embed_text
from studio_nb.services.knowledge.types import Piece
from studio_nb.services.tokenizer import tokenize

#: the chunk store's schema before the lexical index (schema 1), as older versions wrote it
OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE files (
    id INTEGER PRIMARY KEY, root TEXT NOT NULL, source TEXT NOT NULL, hash TEXT NOT NULL,
    size INTEGER NOT NULL, n_chunks INTEGER NOT NULL, ingested_at REAL NOT NULL,
    UNIQUE (root, source));
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
    source TEXT NOT NULL, heading TEXT NOT NULL, start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL, text TEXT NOT NULL, kind TEXT NOT NULL, hash TEXT NOT NULL,
    tokens TEXT NOT NULL, vector BLOB NOT NULL);
CREATE INDEX chunks_file ON chunks(file_id);
"""

DOCS = {
    "install.md": ["安装 SAGE：使用 pip install isage 安装", "配置 JobManager 的端口"],
    "rerank.md": ["重排序组件对检索结果进行重新排序", "The reranker scores each passage against the query"],
}


def write_old_domain(path: Path, embedder) -> None:
    path.mkdir(parents=True)
    db = sqlite3.connect(path / "chunks.sqlite3")
    db.executescript(OLD_SCHEMA)
    db.executemany("INSERT INTO meta VALUES (?, ?)", [("dim", str(embedder.dim)), ("model", "old"), ("generation", "3"),
                                                       ("created_at", str(time.time())), ("updated_at", "0"), ("owner", "")])
    for source, texts in DOCS.items():
        cur = db.execute("INSERT INTO files (root, source, hash, size, n_chunks, ingested_at) VALUES (?,?,?,?,?,?)",
                         ("/old/root", source, "h" + source, 10, len(texts), 0.0))
        for i, text in enumerate(texts):
            piece = Piece("", i + 1, i + 1, text, "text")
            vec = embedder.encode([embed_text(source, piece)])[0].astype(np.float32)
            db.execute("INSERT INTO chunks (file_id, source, heading, start_line, end_line, text, kind, hash, tokens, vector)"
                       " VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (cur.lastrowid, source, "", i + 1, i + 1, text, "text", f"{source}{i}",
                        " ".join(tokenize(embed_text(source, piece))), vec.tobytes()))
    db.commit()
    db.close()


def test_an_old_domain_is_migrated_on_first_open_and_searches_as_before(tmp_path: Path) -> None:
    emb = CountingEmbedder(HashEmbedder())
    write_old_domain(tmp_path / "data" / "knowledge" / "old", emb)
    emb.texts.clear()
    km = KnowledgeManager(tmp_path / "data", embedder=emb)
    dom_info = km.domains()
    assert [(d.name, d.chunks, d.files) for d in dom_info] == [("old", 4, 2)]
    store = km._domains["old"].store
    assert store.migrated and store.get_meta("schema") == "2" and km._domains["old"].lexical_rebuilt
    assert store.term_stats()[0] == 4
    assert [h.chunk.source for h in km.search("重排序", k=1, mode="lexical")] == ["rerank.md"]
    assert [h.chunk.text for h in km.search("JobManager", k=1, mode="lexical")] == ["配置 JobManager 的端口"]
    assert km.mentions("what does the JobManager do?", max_share=0.5) == ["JobManager"]
    assert [h.chunk.source for h in km.search("reranker passage", k=1, mode="dense")] == ["rerank.md"]
    assert emb.texts == ["reranker passage"]  # only the query: nothing stored was embedded again
    km.close()
    # the second open finds the index in place
    km2 = KnowledgeManager(tmp_path / "data", embedder=HashEmbedder())
    km2.warm_up()
    assert not km2._domains["old"].store.migrated and not km2._domains["old"].lexical_rebuilt
    assert [h.chunk.source for h in km2.search("pip install", k=1, mode="lexical")] == ["install.md"]
    km2.close()


def test_a_migrated_domain_takes_incremental_ingests(tmp_path: Path) -> None:
    write_old_domain(tmp_path / "data" / "knowledge" / "old", HashEmbedder())
    km = KnowledgeManager(tmp_path / "data", embedder=HashEmbedder())
    src = tmp_path / "src"
    src.mkdir()
    (src / "new.md").write_text("# New\n\nThe gateway forwards requests to the JobManager.\n")
    km.ingest(src, "old", progress=False)
    assert {h.chunk.source for h in km.search("gateway JobManager", k=2, mode="lexical")} == {"new.md", "install.md"}
    # the old root's rows are untouched by an ingest of another root; a mirror removes them, index rows too
    km.ingest(src, "old", progress=False, mirror=True)
    assert [h.chunk.source for h in km.search("JobManager", k=5, mode="lexical")] == ["new.md"]
    assert km._domains["old"].df("重排序") == 0
    km.close()
