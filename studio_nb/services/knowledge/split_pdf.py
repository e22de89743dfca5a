"""PDF text by page, through the optional ``pypdf`` (imported lazily).

A PDF has no reliable line structure, so a PDF chunk's range counts pages (``P3-P3``).
Without pypdf the caller skips the file and says so in the ingest report.

What a PDF costs to read is not what it weighs: text extraction parses each page's
content stream again, and pages may share one stream, so 1,000 pages pointing at one
157 KB stream are 157 MB of parsing in a 157 KB file (the page bomb of issue #21: 320 s
of server CPU). With :class:`IngestLimits`, the page count and the decoded content of
every page (a shared stream counted once per page, as it is parsed) are summed before a
single page is extracted, and the characters while extracting; a form XObject drawn over
and over on one page is cut off by pypdf after ``_MAX_FORMS_PER_PAGE`` (in the pypdf versions that have
that setting).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
from typing import Any

from studio_nb.services.knowledge.limits import IngestCancelled, IngestControl, IngestLimits, LimitExceeded
from studio_nb.services.knowledge.split_text import SplitConfig, pack_lines
from studio_nb.services.knowledge.types import Piece

#: form XObjects pypdf extracts per page (its own default is 5,000, each parsed again)
_MAX_FORMS_PER_PAGE = 100


def pypdf_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("pypdf") is not None


def split_pdf(data: bytes, cfg: SplitConfig, limits: IngestLimits | None = None,
              control: IngestControl | None = None, name: str = "the PDF") -> list[Piece]:
    """Pieces of a PDF, one or more per page; raises ValueError for an unreadable PDF and
    LimitExceeded (naming ``name``) when it is over ``limits``."""
    import pypdf

    limits = limits or IngestLimits()
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages = list(reader.pages)
    except Exception as exc:  # pypdf raises many types for broken files
        raise ValueError(f"unreadable PDF: {type(exc).__name__}: {exc}") from None
    limits.check("max_pdf_pages", len(pages), f"{name} has {len(pages):,} pages")
    try:
        _check_content(pages, limits, name)
        texts = _extract(pypdf, pages, limits, control, name)
    except (LimitExceeded, IngestCancelled):
        raise
    except Exception as exc:
        raise ValueError(f"unreadable PDF: {type(exc).__name__}: {exc}") from None
    out: list[Piece] = []
    for no, text in enumerate(texts, 1):
        lines = text.split("\n")
        for p in pack_lines(lines, 1, len(lines), f"page {no}", "pdf", cfg):
            out.append(Piece(p.heading, no, no, p.text, "pdf"))
    return out


def _check_content(pages: list[Any], limits: IngestLimits, name: str) -> None:
    """Sum the decoded content of every page (what extraction will parse) against the
    limit; a stream shared by many pages is decoded once but counted for each page."""
    if limits.max_pdf_content_bytes is None:
        return
    sizes: dict[Any, int] = {}
    total = 0
    for page in pages:
        key = _content_key(page)
        size = sizes.get(key) if key is not None else None
        if size is None:
            contents = page.get_contents()
            size = len(contents.get_data()) if contents is not None else 0
            if key is not None:
                sizes[key] = size
        total += size
        limits.check("max_pdf_content_bytes", total,
                     f"{name}'s pages hold at least {total:,} bytes of content to parse "
                     "(a content stream shared by several pages counts for each)")


def _content_key(page: Any) -> tuple | None:
    """The identity of a page's content: the reference to its stream (or to its array of
    streams), or the references in a direct array; None when it is not made of references."""
    ref = page.get("/Contents")  # unresolved
    if hasattr(ref, "idnum"):
        return ((ref.idnum, ref.generation),)
    if isinstance(ref, list) and ref and all(hasattr(r, "idnum") for r in ref):
        return tuple((r.idnum, r.generation) for r in ref)
    return None


def _extract(pypdf: Any, pages: list[Any], limits: IngestLimits, control: IngestControl | None,
             name: str) -> list[str]:
    texts, chars = [], 0
    with _form_cap(pypdf):
        for no, page in enumerate(pages, 1):
            if control is not None:
                control.check()
            texts.append(page.extract_text() or "")
            chars += len(texts[-1])
            limits.check("max_file_chars", chars, f"{name} has {chars:,} characters of text in its first "
                         f"{no:,} pages")
    return texts


def _form_cap(pypdf: Any) -> contextlib.AbstractContextManager:
    """pypdf's per-page form XObject cap, lowered for this thread (where pypdf has one)."""
    apply = getattr(pypdf, "apply_configuration", None)
    config = getattr(pypdf, "Configuration", None)
    fields = {f.name for f in dataclasses.fields(config)} if dataclasses.is_dataclass(config) else set()
    if apply is None or "xform_maximum_invocations_per_extraction" not in fields:
        return contextlib.nullcontext()
    return apply(xform_maximum_invocations_per_extraction=_MAX_FORMS_PER_PAGE)
