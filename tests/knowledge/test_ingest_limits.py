"""What one ingest may cost (issue #21 F5): each limit stops the ingest before anything is
embedded or stored, with a message naming the limit and the setting that raises it, and
a cancelled ingest stores nothing.

The embedder counts what it is asked to embed (bookkeeping, as in the other ingest tests):
"nothing was embedded" is what these tests check; the PDFs are real ones written by pypdf
and read by the real splitter.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kb_helpers import CountingEmbedder, HashEmbedder

from studio_nb.services.knowledge import KnowledgeManager
from studio_nb.services.knowledge.limits import IngestCancelled, IngestControl, IngestLimits, LimitExceeded
from tests.pdf_bomb import page_bomb

SETTINGS = {n: f"Server.{n}" for n in ("max_pdf_pages", "max_pdf_content_bytes", "max_file_chars", "max_chunks",
                                       "max_user_chunks")}


@pytest.fixture
def km(tmp_path: Path):
    emb = CountingEmbedder(HashEmbedder())
    manager = KnowledgeManager(tmp_path / "data", embedder=emb)
    yield manager, emb
    manager.close()


def _refused(km, emb, path: Path, limits: IngestLimits, limit: str, **kw) -> str:
    with pytest.raises(LimitExceeded) as err:
        km.ingest(path, "d", progress=False, limits=limits, user="alice", **kw)
    assert err.value.limit == limit and err.value.code == "limit"
    assert f"Server.{limit}" in str(err.value)  # says what to change
    assert emb.texts == [] and all(d.name != "d" or d.chunks == 0 for d in km.domains())
    return str(err.value)


def test_a_page_bomb_is_refused_by_its_content_before_any_text_is_extracted(km, tmp_path):
    manager, emb = km
    pdf = tmp_path / "bomb.pdf"
    pdf.write_bytes(page_bomb(1000, b"zebra quince ledger " * 200))  # ~4 KB drawn 1,000 times
    assert pdf.stat().st_size < 200_000
    pages = []
    control = IngestControl(on_progress=lambda stage, done, total: pages.append(stage))
    message = _refused(manager, emb, pdf, IngestLimits(max_pdf_content_bytes=1_000_000, settings=SETTINGS),
                       "max_pdf_content_bytes", control=control)
    assert "bomb.pdf" in message and "shared by several pages" in message
    assert "embedding" not in pages


def test_pages_characters_and_chunks_each_have_a_limit(km, tmp_path):
    manager, emb = km
    pdf = tmp_path / "many.pdf"
    pdf.write_bytes(page_bomb(30, b"okapi"))
    _refused(manager, emb, pdf, IngestLimits(max_pdf_pages=20, settings=SETTINGS), "max_pdf_pages")
    pdf.write_bytes(page_bomb(50, b"okapi " * 1000))  # 6,000 characters of text on each page
    message = _refused(manager, emb, pdf, IngestLimits(max_file_chars=20_000, settings=SETTINGS), "max_file_chars")
    assert "in its first 4 pages" in message
    pdf.unlink()
    md = tmp_path / "long.md"
    md.write_text("# Long\n\n" + "The heron counts ledgers. " * 2000)
    _refused(manager, emb, md, IngestLimits(max_file_chars=10_000, settings=SETTINGS), "max_file_chars")
    _refused(manager, emb, md, IngestLimits(max_chunks=5, settings=SETTINGS), "max_chunks")


def test_a_users_total_counts_what_they_hold_and_credits_what_is_replaced(km, tmp_path):
    manager, emb = km
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.md").write_text("# A\n\n" + "alpha words here. " * 300)
    first = manager.ingest(src, "d", progress=False, user="alice")
    held = manager.owned_chunks("alice")
    assert held == first.chunks_added > 1 and manager.owned_chunks("bob") == 0
    emb.texts.clear()
    (src / "a.md").write_text("# A\n\n" + "alpha terms here. " * 300)  # same length: replaces, adds nothing net
    limits = IngestLimits(max_user_chunks=held + 1, user_chunks=held, settings=SETTINGS)
    manager.ingest(src, "d", progress=False, user="alice", limits=limits)
    (src / "b.md").write_text("# B\n\n" + "beta words here. " * 300)
    emb.texts.clear()
    with pytest.raises(LimitExceeded) as err:
        manager.ingest(src, "d", progress=False, user="alice", limits=limits)
    assert err.value.limit == "max_user_chunks" and emb.texts == []
    assert manager.owned_chunks("alice") == held  # b.md was not kept


def test_a_cancelled_ingest_stores_nothing(km, tmp_path):
    manager, emb = km
    src = tmp_path / "src"
    src.mkdir()
    for i in range(5):
        (src / f"d{i}.md").write_text(f"# D{i}\n\n" + f"words of document {i}. " * 200)
    control = IngestControl()

    def stop_when_reading(stage, done, total):
        if stage == "reading" and done == 2:
            control.cancel()

    control._on_progress = stop_when_reading
    with pytest.raises(IngestCancelled):
        manager.ingest(src, "d", progress=False, control=control)
    assert emb.texts == [] and all(d.chunks == 0 for d in manager.domains() if d.name == "d")
    report = manager.ingest(src, "d", progress=False)  # nothing half-done is left in the way
    assert report.chunks_added > 0
