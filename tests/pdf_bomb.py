"""A small PDF that costs a great deal to read: many pages drawing one shared content
stream (issue #21 F5). Used by the ingest-limit tests and bench/under_load.py."""

from __future__ import annotations

import io


def page_bomb(pages: int, content: bytes) -> bytes:
    """A PDF whose ``pages`` pages all draw one content stream showing ``content``.

    Each page names a standard font for the stream's ``/F1``: without one a text extractor
    finds no text at all, and the bomb would cost only its parsing, not the characters.
    """
    from pypdf import PdfWriter
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 12 Tf 72 720 Td (" + content + b") Tj ET")
    ref = writer._add_object(stream)
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica")}))
    resources = writer._add_object(DictionaryObject({
        NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}))
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Contents")] = ref
        page[NameObject("/Resources")] = resources
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()
