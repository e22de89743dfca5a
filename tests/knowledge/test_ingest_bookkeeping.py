"""Ingest bookkeeping and recovery logic. These use a deterministic hash embedder because
what they check is which texts get embedded and what the stores hold, not retrieval
quality; the real-model path is covered in test_knowledge_real.py."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from kb_helpers import CountingEmbedder, HashEmbedder

from studio_nb.errors import ConfigError
from studio_nb.services.knowledge import KnowledgeManager

DOC = "# Title\n\n## Alpha\n\n{a}\n\n## Beta\n\n{b}\n"


def write_docs(root: Path, n: int = 4) -> None:
    for i in range(n):
        (root / f"doc{i}.md").write_text(DOC.format(a=f"alpha{i} " * 60, b=f"beta{i} " * 60))


@pytest.fixture
def setup(tmp_path: Path):
    src = tmp_path / "src"
    src.mkdir()
    write_docs(src)
    emb = CountingEmbedder(HashEmbedder())
    km = KnowledgeManager(tmp_path / "data", embedder=emb)
    yield km, src, emb
    km.close()


def test_unchanged_chunks_inside_a_changed_file_keep_their_vectors(setup) -> None:
    km, src, emb = setup
    first = km.ingest(src, "d", progress=False)
    assert first.chunks_added == len(emb.texts) == 8
    emb.texts.clear()
    (src / "doc1.md").write_text(DOC.format(a="alpha1 " * 60, b="changed " * 60))
    rep = km.ingest(src, "d", progress=False)
    assert (rep.files_changed, rep.files_unchanged, rep.chunks_added, rep.chunks_removed) == (1, 3, 2, 2)
    assert len(emb.texts) == 1 and "changed" in emb.texts[0]
    assert km.domains()[0].chunks == 8


def test_newly_ignored_files_are_removed_and_unreadable_files_keep_old_chunks(setup) -> None:
    km, src, _ = setup
    km.ingest(src, "d", progress=False)
    (src / ".studioignore").write_text("doc0.md\n")
    (src / "doc2.md").write_bytes(b"\xff\xfe bad \x00 bytes")
    rep = km.ingest(src, "d", progress=False)
    assert rep.files_removed == 1 and rep.chunks_removed == 2
    assert rep.errors == ("doc2.md: binary file (NUL bytes)",)
    sources = {h.chunk.source for h in km.search("alpha2 beta2 alpha0", k=10, mode="lexical")}
    assert "doc2.md" in sources and "doc0.md" not in sources
    assert km.domains()[0].files == 3


def test_single_file_ingest_and_reingest(setup) -> None:
    km, src, emb = setup
    rep = km.ingest(src / "doc3.md", "one", progress=False)
    assert (rep.files_seen, rep.files_changed, rep.chunks_added) == (1, 1, 2)
    rep = km.ingest(src / "doc3.md", "one", progress=False)
    assert (rep.files_unchanged, rep.chunks_added, rep.files_removed) == (1, 0, 0)
    assert [h.chunk.source for h in km.search("beta3", domains="one", k=1)] == ["doc3.md"]


def test_a_mirrored_folder_replaces_what_came_from_another_root(setup, tmp_path: Path) -> None:
    # the bundled docs when the package moved: the same files, in another folder
    km, src, _ = setup
    km.ingest(src, "d", progress=False)
    moved = tmp_path / "moved"
    moved.mkdir()
    write_docs(moved, n=3)

    def alpha0_chunks() -> int:
        return sum("alpha0" in h.chunk.text for h in km.search("alpha0", ["d"], k=10, mode="lexical"))

    plain = km.ingest(moved, "d", progress=False)  # an ordinary ingest adds a second root
    assert plain.files_removed == 0 and km.domains()[0].files == 7 and alpha0_chunks() == 2
    mirrored = km.ingest(moved, "d", progress=False, mirror=True)
    assert (mirrored.files_removed, mirrored.chunks_removed, mirrored.chunks_added) == (4, 8, 0)
    assert km.domains()[0].files == 3 and alpha0_chunks() == 1


def test_index_rebuilt_after_crash_or_corruption(setup, tmp_path: Path) -> None:
    km, src, _ = setup
    km.ingest(src, "d", progress=False)
    expected = [h.chunk.id for h in km.search("alpha3", k=3, mode="dense")]
    path = Path(km.domains()[0].path)
    km.close()
    (path / "vectors.gen").write_text("-1")  # as if the process died before stamping the graph
    km2 = KnowledgeManager(tmp_path / "data", embedder=HashEmbedder())
    assert [h.chunk.id for h in km2.search("alpha3", k=3, mode="dense")] == expected
    assert (path / "vectors.gen").read_text() != "-1"
    km2.close()
    (path / "vectors.hnsw").write_bytes(b"garbage")
    km3 = KnowledgeManager(tmp_path / "data", embedder=HashEmbedder())
    assert [h.chunk.id for h in km3.search("alpha3", k=3, mode="dense")] == expected
    km3.close()


def test_a_small_ingest_rewrites_no_graph_and_an_unclean_stop_is_caught_up(setup, tmp_path: Path) -> None:
    km, src, _ = setup
    km.ingest(src, "d", progress=False)
    path = Path(km.domains()[0].path)
    saved = (path / "vectors.hnsw").read_bytes()
    (src / "k.md").write_text(DOC.format(a="kappa " * 60, b="sigma " * 60))
    assert km.ingest(src, "d", progress=False).chunks_added == 2
    assert (path / "vectors.hnsw").read_bytes() == saved  # the graph on disk is behind, and marked so
    assert {h.chunk.source for h in km.search("kappa", k=1, mode="dense")} == {"k.md"}
    # another manager opens the domain as after a crash (km never closed): it catches up from the store
    km2 = KnowledgeManager(tmp_path / "data", embedder=HashEmbedder())
    assert {h.chunk.source for h in km2.search("kappa", k=1, mode="dense")} == {"k.md"}
    assert km2._domains["d"].vectors.live == km2.domains()[0].chunks == 10
    km2.close()  # ... and saves the caught-up graph
    assert (path / "vectors.hnsw").read_bytes() != saved


def test_a_write_by_another_process_is_seen_by_a_running_one(setup, tmp_path: Path) -> None:
    km, src, _ = setup
    km.ingest(src, "d", progress=False)
    assert km.search("kappa", k=1, mode="lexical") == []
    other_src = tmp_path / "other"
    other_src.mkdir()
    (other_src / "g.md").write_text(DOC.format(a="kappa " * 60, b="sigma " * 60))
    writer = KnowledgeManager(tmp_path / "data", embedder=HashEmbedder())  # its own store and graph
    writer.ingest(other_src, "d", progress=False)
    writer.close()
    assert {h.chunk.source for h in km.search("kappa", k=1, mode="lexical")} == {"g.md"}
    assert {h.chunk.source for h in km.search("kappa", k=1, mode="dense")} == {"g.md"}
    assert km._domains["d"].vectors.live == 10


def test_dimension_mismatch_is_a_clear_error(setup, tmp_path: Path) -> None:
    km, src, _ = setup
    km.ingest(src, "d", progress=False)

    class Wide(HashEmbedder):
        dim = 32

    other = KnowledgeManager(tmp_path / "data", embedder=Wide())
    with pytest.raises(ConfigError, match="64-d vectors but the embedder makes 32-d") as exc:
        other.ingest(src, "d", progress=False)
    assert exc.value.code == "bad_config"
    other.close()


def test_repeated_replacement_compacts_hidden_vectors(setup) -> None:
    km, src, _ = setup
    km.ingest(src, "d", progress=False)
    dom = km._domains["d"]
    dom.compact_min = 16
    compactions = 0
    for round_ in range(6):
        for i in range(4):
            (src / f"doc{i}.md").write_text(DOC.format(a=f"alpha{i} r{round_} " * 300, b=f"beta{i} r{round_} " * 300))
        before = dom.vectors.deleted
        rep = km.ingest(src, "d", progress=False)
        compactions += dom.vectors.deleted < before + rep.chunks_removed
    live = km.domains()[0].chunks
    assert compactions >= 1 and dom.vectors.deleted <= max(live, 16)
    assert dom.vectors.live == live
    hits = km.search("alpha1 r5", k=live, mode="dense")
    assert len(hits) == live and {h.chunk.id for h in hits} == set(dom.store.chunks(sorted(h.chunk.id for h in hits)))


def test_searches_run_safely_during_an_ingest(setup) -> None:
    km, src, _ = setup
    km.ingest(src, "d", progress=False)
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher() -> None:
        try:
            while not stop.is_set():
                for mode in ("dense", "lexical", "hybrid"):
                    for hit in km.search("alpha1 beta2", k=5, mode=mode):
                        assert hit.chunk.text
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for round_ in range(5):
            write_docs(src, n=4 + round_ * 3)
            (src / "doc1.md").write_text(DOC.format(a=f"alpha1 v{round_} " * 80, b="beta1 " * 40))
            km.ingest(src, "d", progress=False)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    assert km.domains()[0].files == 16
