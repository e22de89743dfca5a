"""One citation type with one ``ref`` format, from the knowledge store to the JSON a page gets,
and files written before it still load.

``data/paused_before_citation.json`` is a real snapshot written by the code before the
Citation type (commit b4fbfa4): a turn paused at ``prompt_builder``, its trace holding the
retrieved ``Source``s and the ``EvidencePiece``s with their place in flat fields.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio_nb import present
from studio_nb.citation import Citation
from studio_nb.debug import snapshot
from studio_nb.messages import EvidencePiece, Source, from_json, to_json
from studio_nb.services.knowledge.types import Chunk, SearchHit, hit_dict

OLD_SNAPSHOT = Path(__file__).parent / "data" / "paused_before_citation.json"
CITED_KEYS = {"ref", "domain", "path", "start_line", "end_line", "heading", "unit"}


def test_one_ref_format_for_every_kind_of_place() -> None:
    assert Citation("guide/install.md", 12, 14, "Install", "sage_docs").ref == "sage_docs/guide/install.md:L12-L14"
    assert Citation("guide/install.md", 12, 14, "Install", "sage_docs").titled == \
        "sage_docs/guide/install.md:L12-L14 § Install"
    assert Citation.of_chunk("nbs", "demo.ipynb", 3, 4, kind="notebook").ref == "nbs/demo.ipynb:C3-C4"
    assert Citation.of_chunk("papers", "a.pdf", 2, 2, kind="pdf").ref == "papers/a.pdf:P2-P2"
    assert Citation("nb.ipynb:C3").ref == "nb.ipynb:C3"  # an attachment: its label, no range


def test_a_chunk_its_source_and_its_evidence_cite_alike() -> None:
    chunk = Chunk(7, "sage_docs", "guide/install.md", "Install", 10, 20, "pip install isage", "markdown")
    hit = SearchHit(chunk, 0.5, 0.4, 3.0)
    source = Source(chunk.citation, 0.5, chunk.text)
    piece = EvidencePiece(1, "pip install isage", Citation("guide/install.md", 12, 12, "Install", "sage_docs"))
    assert hit.ref == source.ref == "sage_docs/guide/install.md:L10-L20" and piece.ref.endswith(":L12-L12")
    for shape in (hit_dict(hit), source.to_dict(), piece.to_dict()):  # one set of keys, never "source"
        assert CITED_KEYS <= set(shape) and "source" not in shape
        assert shape["path"] == "guide/install.md" and shape["ref"].startswith("sage_docs/guide/install.md:L")
    assert from_json(json.loads(json.dumps(to_json(piece)))) == piece


def test_a_snapshot_written_before_the_citation_type_loads_and_resumes(scripted_studio: Any) -> None:
    doc = snapshot.load(OLD_SNAPSHOT)
    trace, pending = snapshot.restore(doc)
    pieces = pending.evidence.pieces
    assert [p.ref for p in pieces] == ["studio_nb_docs/kernel.md:L41-L43", "studio_nb_docs/overview.md:L15-L17",
                                      "studio_nb_docs/usage.md:L23-L26", "studio_nb_docs/overview.md:L21-L21"]
    assert pieces[0].citation.heading == "The studio-nb kernel: operators and pipelines > ParallelGroup"
    assert all(isinstance(s.citation, Citation) and s.path.endswith(".md") for s in pending.documents)
    assert tuple(trace.last("knowledge_rag").output) == pending.documents  # the trace's records came back too

    pipe = scripted_studio("A ParallelGroup runs its branches concurrently [1].")
    turn = pipe.resume(str(OLD_SNAPSHOT))
    turn.text()
    data = present.to_json(turn)
    assert data["synthesis"].startswith("A ParallelGroup runs its branches concurrently")
    assert [p["ref"] for p in data["evidence"]["pieces"]] == [p.ref for p in pieces]
    assert all(CITED_KEYS <= set(s) for s in data["sources"])
