"""Cells and files attached to a chat message, read as evidence of the question.

jupyterlab-chat keeps attachments in the chat (``chat.get_attachments()``): a file
(``FileAttachment``: a path under the Jupyter root, maybe a selection) or cells of a
notebook (``NotebookAttachment``: the notebook's path and cell ids, maybe a selection; a whole
notebook, attached as a file, is each of its non-empty cells).
Each becomes a ``studio_nb.messages.Attachment`` labelled the way the answer cites it:
``nb.ipynb:C3`` (the third cell), ``src/util.py`` or ``src/util.py:L4-L9`` (a selection).

Paths are read only under the Jupyter root (``..``, absolute paths and links that lead
out are refused) and each is capped, so an attachment cannot read more than the user
attaching it could open in JupyterLab.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from studio_nb.messages import Attachment

#: the most characters one attachment adds to the question
MAX_CHARS = 6000
#: the most attachments one message adds
MAX_ATTACHMENTS = 8


def _field(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def under_root(root: str | Path, rel: str) -> Path | None:
    """``rel`` resolved inside ``root``, or None when it leads out (or does not exist)."""
    base = Path(root).expanduser().resolve()
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        return None
    return target if target.is_file() else None


def _selection(obj: Any) -> tuple[str, int, int] | None:
    sel = _field(obj, "selection")
    if not sel:
        return None
    start, end = _field(sel, "start") or (0, 0), _field(sel, "end") or (0, 0)
    return str(_field(sel, "content") or ""), int(start[0]) + 1, int(end[0]) + 1


def read_file(root: str | Path, att: Any) -> Attachment | None:
    rel = str(_field(att, "value") or "")
    path = under_root(root, rel)
    if path is None:
        return None
    sel = _selection(att)
    if sel is not None and sel[0].strip():
        return Attachment(f"{rel}:L{sel[1]}-L{sel[2]}", sel[0][:MAX_CHARS])
    text = path.read_text(encoding="utf-8", errors="replace")[:MAX_CHARS]
    return Attachment(rel, text)


def read_cells(root: str | Path, att: Any) -> list[Attachment]:
    rel = str(_field(att, "value") or "")
    path = under_root(root, rel)
    if path is None:
        return []
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return []
    index = {c.get("id"): i for i, c in enumerate(cells) if isinstance(c, dict)}
    name = Path(rel).name
    out = []
    chosen = _field(att, "cells") or [{"id": c.get("id")} for c in cells if isinstance(c, dict)]  # none: all
    for cell in chosen:
        i = index.get(_field(cell, "id"))
        if i is None:
            continue
        sel = _selection(cell)
        source = cells[i].get("source", "")
        text = sel[0] if sel is not None and sel[0].strip() else ("".join(source) if isinstance(source, list) else source)
        if text.strip():
            out.append(Attachment(f"{name}:C{i + 1}", text[:MAX_CHARS]))
    return out


def read(chat: Any, message: Any, root: str | Path) -> tuple[Attachment, ...]:
    """The attachments of ``message`` in ``chat`` as evidence (unreadable ones are left out)."""
    ids = _field(message, "attachments") or ()
    known = chat.get_attachments() if ids else {}
    out: list[Attachment] = []
    for att_id in ids:
        att = known.get(att_id)
        if att is None:
            continue
        if _field(att, "type") == "notebook" or str(_field(att, "value") or "").endswith(".ipynb"):
            out += read_cells(root, att)
        else:
            item = read_file(root, att)
            if item is not None:
                out.append(item)
    return tuple(out[:MAX_ATTACHMENTS])


__all__ = ["MAX_ATTACHMENTS", "MAX_CHARS", "read", "read_cells", "read_file", "under_root"]
