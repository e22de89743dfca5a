"""PDF text by page, through the optional ``pypdf`` (imported lazily).

A PDF has no reliable line structure, so a PDF chunk's range counts pages (``P3-P3``).
Without pypdf the caller skips the file and says so in the ingest report.
"""

from __future__ import annotations

import io

from studio_nb.services.knowledge.split_text import SplitConfig, pack_lines
from studio_nb.services.knowledge.types import Piece


def pypdf_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pypdf") is not None


def split_pdf(data: bytes, cfg: SplitConfig) -> list[Piece]:
    """Pieces of a PDF, one or more per page; raises ValueError for an unreadable PDF."""
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types for broken files
        raise ValueError(f"unreadable PDF: {type(exc).__name__}: {exc}") from None
    out: list[Piece] = []
    for no, text in enumerate(pages, 1):
        lines = text.split("\n")
        for p in pack_lines(lines, 1, len(lines), f"page {no}", "pdf", cfg):
            out.append(Piece(p.heading, no, no, p.text, "pdf"))
    return out
