"""The one renderer of a turn in a JupyterLab chat message.

The answer itself is ``studio_nb.present.markdown`` — the same Markdown the magic shows,
evidence first, then the checked synthesis — so a chat answer never has a shape of its
own. This module only adds what a chat can do and a notebook output cannot: under the
answer, one button per citation that opens the cited file at its line in JupyterLab.

Why a ``<button data-commandlinker-…>`` and not a Markdown link: JupyterLab's Markdown
renderer in a chat message has no resolver for server paths, so a relative link opens
a new browser tab on the raw file; the command linker runs ``rendermime:handle-local-link``
with ``{"path", "id": fragment}``, which opens the file with its default viewer and hands
it the fragment (JupyterLab 4.6 first asks "Run Command?", the chat being untrusted
content). What the fragment can say depends on that viewer: the file editor takes
``#line=N`` (0-based) and puts the cursor on that line; the Markdown preview, the default
for ``.md``, only scrolls to a heading's id, so a Markdown citation lands on the section
the passage belongs to (its last heading, spaces as ``-``, as JupyterLab's
``createHeaderId`` makes them). The sanitizer keeps ``data-commandlinker-*`` on buttons
(checked by the browser test). A cited file outside the Jupyter root cannot be opened
there: its passage (already in the evidence) stays the preview, and the button list
names it as not openable.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any, Callable

from studio_nb import present

#: where a ``studio_nb.citation.Citation`` lies: its path under the Jupyter root (None: outside it)
Locate = Callable[[Any], str | None]

OPEN_COMMAND = "rendermime:handle-local-link"


MARKDOWN = (".md", ".markdown")


def fragment(path: str, line: int, heading: str = "") -> tuple[str, str]:
    """(the fragment that opens ``path`` at the passage, what it points at, for the tooltip)."""
    if path.lower().endswith(MARKDOWN) and heading:
        section = heading.split(" > ")[-1].strip()
        return "#" + section.replace(" ", "-"), f"section {section}"
    return f"#line={max(line - 1, 0)}", f"line {line}"


def citation_button(n: int, path: str, line: int, label: str, heading: str = "") -> str:
    """A button that opens ``path`` (relative to the Jupyter root) at the passage."""
    frag, where = fragment(path, line, heading)
    args = escape(json.dumps({"path": path, "id": frag}, ensure_ascii=False), quote=True)
    return (f'<button class="studio-cite jp-Button" data-commandlinker-command="{OPEN_COMMAND}" '
            f'data-commandlinker-args="{args}" title="open {escape(path, quote=True)} at {escape(where)}">'
            f"[{n}] {escape(label)}</button>")


def citations(view: Any, locate: Locate) -> str:
    """One line of buttons for the view's cited passages ("" when none are files)."""
    ev = view.evidence
    if ev is None or not ev.pieces:
        return ""
    items = []
    for p in ev.pieces:
        if p.kind != "passage":
            continue
        cite = p.citation
        where = locate(cite)
        label = f"{Path(cite.path).name}:{cite.start_line}"
        if where is None:
            items.append(f"<span class='studio-cite-off' title='outside the Jupyter root: the passage above is "
                         f"the preview'>[{p.n}] {escape(label)}</span>")
        else:
            items.append(citation_button(p.n, where, cite.start_line, label, cite.heading))
    return ("<div class='studio-citations'>" + " ".join(items) + "</div>") if items else ""


def message(view: Any, locate: Locate, *, note: str = "") -> str:
    """The chat message body for ``view`` as it stands (partial while streaming)."""
    body = present.markdown(view, timings=view.done)
    links = citations(view, locate)
    out = [body, links] if links else [body]
    if note:
        out.append(f"_{note}_")
    return "\n\n".join(out)


__all__ = ["OPEN_COMMAND", "citation_button", "citations", "fragment", "message"]
