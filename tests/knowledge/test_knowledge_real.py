"""End to end with the real embedding model on real corpus files: ingest, search in every
mode in Chinese and English, source references, persistence, concurrency, incremental
re-ingest counted at the embedder."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path

import pytest

from studio_nb.errors import ConfigError
from studio_nb.services.knowledge import KnowledgeManager

from kb_helpers import SUBSET, CountingEmbedder, copy_subset

QUERIES = {
    # English question, answered in the English FAQ
    ("en", "How do I install SAGE Kernel with pip?"): "docs/faq.md",
    # Chinese question, answered in the Chinese reranker guide
    ("zh", "重排序组件 BGEReranker 如何对检索结果重新排序？"): "docs/reranker.md",
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data: Path) -> Path:
    src = copy_subset(shared_data, tmp_path_factory.mktemp("corpus"))
    (src / ".studioignore").write_text("# drafts are not knowledge\ndrafts/\n*.log\n")
    (src / "drafts").mkdir()
    (src / "drafts" / "secret.md").write_text("# Draft\n\nzanzibarquux plans\n")
    (src / "run.log").write_text("zanzibarquux log line\n")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "x.md").write_text("# cached\n\nzanzibarquux cache\n")
    (src / "bad").mkdir()
    (src / "bad" / "image.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (src / "bad" / "latin.txt").write_bytes("caf\xe9 cr\xe8me br\xfbl\xe9e".encode("latin-1"))
    (src / "bad" / "broken.json").write_text('{"a": [1, 2')
    (src / "bad" / "paper.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    return src


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, corpus: Path, real_embedder):
    emb = CountingEmbedder(real_embedder)
    km = KnowledgeManager(tmp_path_factory.mktemp("data"), embedder=emb)
    report = km.ingest(corpus, "sage_docs", progress=False)
    yield km, report, emb
    km.close()


def test_ingest_report_counts_files_chunks_and_errors(ingested) -> None:
    km, report, emb = ingested
    assert report.domain == "sage_docs"
    assert report.files_seen == len(SUBSET) + 4  # the bad files are seen, ignored ones are not
    assert report.files_changed == len(SUBSET) and report.files_unchanged == 0 and report.files_removed == 0
    assert report.chunks_added == len(emb.texts) > 40  # every chunk embedded exactly once
    errors = "\n".join(report.errors)
    assert len(report.errors) == 4
    assert "bad/image.md: binary" in errors and "bad/latin.txt: not UTF-8" in errors
    assert "bad/broken.json: cannot parse" in errors and "bad/paper.pdf:" in errors
    assert not any("zanzibarquux" in t for t in emb.texts), ".studioignore and __pycache__ are honoured"
    (info,) = km.domains()
    assert (info.name, info.files, info.chunks, info.dim) == ("sage_docs", len(SUBSET), report.chunks_added, 384)
    assert info.index_bytes > 0


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
@pytest.mark.parametrize(("lang", "query"), list(QUERIES))
def test_each_mode_finds_the_relevant_file(ingested, mode: str, lang: str, query: str) -> None:
    km, _, _ = ingested
    hits = km.search(query, k=5, mode=mode)
    assert 1 <= len(hits) <= 5
    assert QUERIES[(lang, query)] in [h.chunk.source for h in hits], [h.ref for h in hits]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    if mode == "dense":
        assert all(h.dense_score is not None and -1 <= h.dense_score <= 1 for h in hits)
    if mode == "lexical":
        assert all(h.lexical_score and h.lexical_score > 0 for h in hits)


def test_hybrid_top_hit_is_the_answering_section(ingested) -> None:
    km, _, _ = ingested
    top = km.search("How do I install SAGE Kernel with pip?", k=1)[0]
    assert top.chunk.source == "docs/faq.md" and "pip install intsage-kernel" in top.chunk.text
    top = km.search("如何构建 C++ 扩展？需要哪些系统依赖", k=1)[0]
    assert top.chunk.source == "docs/installation.md" and "C++" in top.chunk.heading


def test_hit_line_ranges_and_refs_match_the_files(ingested, corpus: Path) -> None:
    km, _, _ = ingested
    seen = 0
    for query in ["SageDB vector search", "重排序", "pipeline_run", "内存 配置", "Kafka integration", "安装"]:
        for hit in km.search(query, k=5):
            c = hit.chunk
            lines = (corpus / c.source).read_text(encoding="utf-8").split("\n")
            assert c.text == "\n".join(lines[c.start_line - 1 : c.end_line])
            assert hit.ref == f"{c.domain}/{c.source}:L{c.start_line}-L{c.end_line}"
            assert hit.citation.titled == f"{hit.ref} § {c.heading}"
            assert re.fullmatch(r"\S+:L\d+-L\d+", hit.ref)
            seen += 1
    assert seen >= 25


def test_persistence_across_instances(ingested, real_embedder) -> None:
    km, _, _ = ingested
    path = Path(km.domains()[0].path)
    index_mtime = (path / "vectors.hnsw").stat().st_mtime_ns
    queries = ["How much memory does SAGE Kernel use?", "向量数据库 SAGE-DB 的索引类型"]
    before = [[h.chunk.id for h in km.search(q, k=5)] for q in queries]
    km2 = KnowledgeManager(km.data_dir, embedder=real_embedder)
    try:
        km2.warm_up()
        assert km2.domains() == km.domains()
        assert [[h.chunk.id for h in km2.search(q, k=5)] for q in queries] == before
        assert (path / "vectors.hnsw").stat().st_mtime_ns == index_mtime, "loaded, not rebuilt"
    finally:
        km2.close()


def test_concurrent_searches_agree_with_sequential(ingested) -> None:
    km, _, _ = ingested
    queries = ["SAGE Kernel streams", "重排序器", "SimpleRetriever", "安装 pip", "Kafka", "SageDB 插入向量"]
    expected = {q: [h.chunk.id for h in km.search(q, k=5)] for q in queries}
    errors: list[BaseException] = []
    results: list[tuple[str, list[int]]] = []

    def worker(n: int) -> None:
        try:
            for i in range(12):
                q = queries[(n + i) % len(queries)]
                results.append((q, [h.chunk.id for h in km.search(q, k=5)]))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 72 and all(ids == expected[q] for q, ids in results)


@pytest.mark.anyio
async def test_asearch_across_domains_and_remove_domain(ingested, corpus: Path) -> None:
    km, _, emb = ingested
    report = km.ingest(corpus / "examples" / "sage_db" / "README.md", "user_uploads", progress=False)
    assert report.files_seen == 1 and report.chunks_added >= 1
    hits = await km.asearch("SAGE-DB 示例 hello_sage_db_app 运行", k=10)
    assert {h.chunk.domain for h in hits} == {"sage_docs", "user_uploads"}
    assert hits == km.search("SAGE-DB 示例 hello_sage_db_app 运行", k=10)
    only = await km.asearch("SAGE-DB", domains=["user_uploads"], k=5)
    assert only and {h.chunk.domain for h in only} == {"user_uploads"} and only[0].chunk.source == "README.md"
    assert await km.asearch("SAGE-DB", domains=["research_guidance"]) == []  # never ingested: no hits
    assert km.remove_domain("user_uploads") is True
    assert km.remove_domain("user_uploads") is False
    assert [d.name for d in km.domains()] == ["sage_docs"]
    assert not (km.root / "user_uploads").exists()


def test_bad_requests_get_clear_errors(ingested, tmp_path: Path) -> None:
    km, _, _ = ingested
    with pytest.raises(ConfigError, match="unknown search mode") as exc:
        km.search("x", mode="semantic")
    assert exc.value.code == "bad_config"
    with pytest.raises(ConfigError, match="bad knowledge domain name"):
        km.ingest(tmp_path, "../escape")
    with pytest.raises(ConfigError, match="no such file or folder"):
        km.ingest(tmp_path / "missing", "sage_docs")
    with pytest.raises(ConfigError, match="k must be"):
        km.search("x", k=0)
    assert km.search("   ") == []


def test_incremental_reingest_embeds_only_what_changed(tmp_path: Path, shared_data: Path, real_embedder) -> None:
    src = tmp_path / "src"
    for rel in ["docs/faq.md", "docs/sage_db.md", "examples/simple_rag.py"]:
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / SUBSET[rel], src / rel)
    emb = CountingEmbedder(real_embedder)
    km = KnowledgeManager(tmp_path / "data", embedder=emb)
    try:
        first = km.ingest(src, "examples", progress=False)
        assert first.files_changed == 3 and first.chunks_added == len(emb.texts)

        # touched (same bytes) and untouched files are not re-embedded
        emb.texts.clear()
        (src / "docs/sage_db.md").touch()
        again = km.ingest(src, "examples", progress=False)
        assert (again.files_unchanged, again.files_changed, again.chunks_added, emb.texts) == (3, 0, 0, [])

        # one paragraph edited: only that file is replaced, only the edited chunk embedded
        faq = src / "docs/faq.md"
        faq.write_text(faq.read_text().replace("Minimal overhead with efficient memory management",
                                               "Minimal overhead thanks to the flibbertigibbet allocator"))
        edited = km.ingest(src, "examples", progress=False)
        assert edited.files_changed == 1 and edited.files_unchanged == 2
        assert len(emb.texts) == 1 and emb.texts[0].startswith("docs/faq.md") and "flibbertigibbet" in emb.texts[0]
        assert edited.chunks_added == edited.chunks_removed > 1  # the whole file's chunks were swapped
        hit = km.search("flibbertigibbet allocator", k=1, mode="lexical")[0]
        assert hit.chunk.source == "docs/faq.md" and "flibbertigibbet" in hit.chunk.text

        # a deleted file's chunks go away
        emb.texts.clear()
        (src / "examples/simple_rag.py").unlink()
        gone = km.ingest(src, "examples", progress=False)
        assert (gone.files_removed, gone.chunks_added, emb.texts) == (1, 0, [])
        assert gone.chunks_removed > 5
        for mode in ("dense", "lexical", "hybrid"):
            assert all(h.chunk.source != "examples/simple_rag.py" for h in km.search("SimpleRetriever pipeline_run", k=10, mode=mode))
        assert km.domains()[0].files == 2
    finally:
        km.close()
