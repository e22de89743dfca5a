"""Where a passage comes from: the one citation type, with the one ``ref`` format.

Every cited thing — a retrieved chunk (``Chunk``, ``SearchHit``), a retrieved source of
the pipeline (``messages.Source``), a piece of evidence (``messages.EvidencePiece``) —
carries a ``Citation``, and every front end names it by ``citation.ref``::

    sage_docs/guide/install.md:L12-L14      a passage of a file in a knowledge domain
    notebooks/demo.ipynb:C3-C4              cells of a notebook (PDF pages: P2-P3)
    nb.ipynb:C3                             an attached cell (its label, as the user attached it)

``titled`` adds the heading the passage sits under (``ref § heading``) for lists of
sources. In JSON a citation is flat keys of the thing cited (``Citation.to_dict``: ``ref``,
``domain``, ``path``, ``start_line``, ``end_line``, ``heading``, ``unit``) — one set of
names everywhere, ``path`` never ``source``.

It imports nothing of studio-nb, so the knowledge services and the pipeline's messages
share it without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: the unit a chunk kind's line numbers count: notebooks count cells, PDFs pages
UNITS = {"notebook": "C", "pdf": "P"}


@dataclass(frozen=True)
class Citation:
    """A place in a document: ``path`` (relative to its domain), a range, the heading above it.

    ``start_line == 0`` means no range (an attachment's label, a tool's name): ``ref`` is
    the path alone. ``unit`` is what the range counts: ``L`` lines, ``C`` notebook cells,
    ``P`` PDF pages.
    """

    path: str
    start_line: int = 0
    end_line: int = 0
    heading: str = ""
    domain: str = ""
    unit: str = "L"

    @classmethod
    def of_chunk(cls, domain: str, path: str, start_line: int, end_line: int, heading: str = "",
                 kind: str = "") -> "Citation":
        """The citation of a stored chunk of kind ``kind`` (its unit follows the kind)."""
        return cls(path, start_line, end_line, heading, domain, UNITS.get(kind, "L"))

    @property
    def ref(self) -> str:
        """``domain/path:L12-L14`` — the one way a citation is written (see the module doc)."""
        where = f"{self.domain}/{self.path}" if self.domain else self.path
        if not self.start_line:
            return where
        return f"{where}:{self.unit}{self.start_line}-{self.unit}{self.end_line or self.start_line}"

    @property
    def titled(self) -> str:
        """``ref § heading``: how a list of sources names the passage."""
        return f"{self.ref} § {self.heading}" if self.heading else self.ref

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "domain": self.domain, "path": self.path, "start_line": self.start_line,
                "end_line": self.end_line, "heading": self.heading, "unit": self.unit}


class Cited:
    """Read-only access to a cited thing's ``citation`` fields (``ref``, ``path``, ...).

    Mixed into the records that carry a ``citation`` field, so ``piece.ref`` or
    ``source.path`` read the one Citation instead of a copy of it.
    """

    citation: Citation

    @property
    def ref(self) -> str:
        return self.citation.ref

    @property
    def domain(self) -> str:
        return self.citation.domain

    @property
    def path(self) -> str:
        return self.citation.path

    @property
    def heading(self) -> str:
        return self.citation.heading

    @property
    def start_line(self) -> int:
        return self.citation.start_line

    @property
    def end_line(self) -> int:
        return self.citation.end_line


__all__ = ["Citation", "Cited", "UNITS"]
