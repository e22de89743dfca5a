"""Jupyter notebooks split by cell, read as plain JSON (no nbformat, nothing executed).

Cells are the author's own units; small neighbours are merged up to the window size and
a chunk is titled by the last Markdown heading above it. Line numbers inside the JSON
file mean nothing to a reader, so a notebook chunk's range counts cells (1-based) and its
reference reads ``nb.ipynb:C3-C5``. Outputs are left out: they are results, not knowledge,
and often huge.
"""

from __future__ import annotations

import json
import re

from studio_nb.services.knowledge.split_text import SplitConfig, pack_lines
from studio_nb.services.knowledge.types import Piece

_HEAD = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def split_notebook(text: str, cfg: SplitConfig) -> list[Piece]:
    """Pieces of an ``.ipynb``; raises ValueError when the JSON is not a notebook."""
    nb = json.loads(text)
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise ValueError("not a Jupyter notebook: no 'cells' list")
    out: list[Piece] = []
    heading = ""
    group: list[tuple[int, str]] = []

    def flush() -> None:
        if group:
            body = "\n\n".join(t for _, t in group)
            out.append(Piece(heading_of_group, group[0][0], group[-1][0], body, "notebook"))
            group.clear()

    heading_of_group = ""
    for no, cell in enumerate(cells, 1):
        src = cell.get("source", "") if isinstance(cell, dict) else ""
        src = "".join(src) if isinstance(src, list) else str(src)
        if not src.strip():
            continue
        if cell.get("cell_type") == "markdown":
            heads = _HEAD.findall(src)
            if heads:
                flush()
                heading = heads[-1].strip()
        if len(src) > cfg.max_chars:
            flush()
            lines = src.split("\n")
            for p in pack_lines(lines, 1, len(lines), heading, "notebook", cfg):
                out.append(Piece(p.heading, no, no, p.text, "notebook"))
            continue
        if group and sum(len(t) + 2 for _, t in group) + len(src) > cfg.max_chars:
            flush()
        if not group:
            heading_of_group = heading
        group.append((no, src))
    flush()
    return out
