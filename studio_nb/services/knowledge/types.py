"""The records the knowledge manager hands out: chunks, search hits, domain and ingest reports.

They are frozen dataclasses of plain values so they can cross threads, be cached, and be
turned into JSON (``hit_dict``) for the REST API, the CLI and the search tool. A chunk is
cited by its ``citation`` (``studio_nb.citation``), the one citation type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio_nb.citation import Citation


@dataclass(frozen=True)
class Piece:
    """A chunk as a splitter produces it, before it has a domain or a row id.

    ``start_line``/``end_line`` are 1-based and inclusive; for text formats the chunk text
    is exactly those lines of the file (notebooks count cells instead of lines).
    """

    heading: str
    start_line: int
    end_line: int
    text: str
    kind: str


@dataclass(frozen=True)
class Chunk:
    """One stored chunk; ``id`` is its row id in its domain's store (and its vector label)."""

    id: int
    domain: str
    source: str
    heading: str
    start_line: int
    end_line: int
    text: str
    kind: str

    @property
    def citation(self) -> Citation:
        """Where the chunk is (``citation.ref``: ``domain/path:L10-L42``)."""
        return Citation.of_chunk(self.domain, self.source, self.start_line, self.end_line, self.heading, self.kind)

    @property
    def ref(self) -> str:
        return self.citation.ref


@dataclass(frozen=True)
class SearchHit:
    """A chunk with its fused score and the two scores it was fused from.

    ``dense_score`` is the cosine similarity, ``lexical_score`` the BM25 score; either is
    None when the chunk was not among that retriever's candidates.
    """

    chunk: Chunk
    score: float
    dense_score: float | None = None
    lexical_score: float | None = None

    @property
    def citation(self) -> Citation:
        return self.chunk.citation

    @property
    def ref(self) -> str:
        return self.chunk.citation.ref


@dataclass(frozen=True)
class DomainInfo:
    """What a domain holds; ``index_bytes`` is the size of its persisted vector index."""

    name: str
    files: int
    chunks: int
    dim: int
    model: str
    path: str
    index_bytes: int
    updated_at: float
    #: the user whose private domain this is; "" for a shared domain (admin-ingested, bundled)
    owner: str = ""


@dataclass(frozen=True)
class IngestReport:
    """The outcome of one ``ingest`` call.

    ``errors`` lists ``"relative/path: reason"`` for every file that was skipped (unreadable,
    binary, undecodable, unsupported without an optional dependency); such files keep
    whatever chunks an earlier ingest stored for them.
    """

    domain: str
    files_seen: int
    files_changed: int
    files_unchanged: int
    files_removed: int
    chunks_added: int
    chunks_removed: int
    errors: tuple[str, ...] = field(default_factory=tuple)
    seconds: float = 0.0


def hit_dict(hit: SearchHit, *, max_chars: int | None = None) -> dict:
    """A search hit as plain JSON: the one shape the CLI, the REST API and the search tool use."""
    c = hit.chunk
    text = c.text if max_chars is None or len(c.text) <= max_chars else c.text[:max_chars] + "…"
    return {
        **c.citation.to_dict(),
        "score": round(hit.score, 5),
        "dense_score": hit.dense_score,
        "lexical_score": hit.lexical_score,
        "text": text,
    }
