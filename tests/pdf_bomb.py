"""A small PDF that costs a great deal to read: many pages drawing one shared content
stream (issue #21 F5). Used by the ingest-limit tests and bench/under_load.py."""

from __future__ import annotations

import io


def page_bomb(pages: int, content: bytes) -> bytes:
    """A PDF whose ``pages`` pages all draw one content stream showing ``content``."""
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, NameObject

    writer = PdfWriter()
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 12 Tf 72 720 Td (" + content + b") Tj ET")
    ref = writer._add_object(stream)
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Contents")] = ref
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()
