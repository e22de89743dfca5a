"""Markdown and reStructuredText split on their headings, keeping the heading path.

A section under "Guide > Install" is the natural unit of an answer, and the path tells the
reader (and the retrievers, which see it prepended) what the section is about even when
its own text never repeats the topic. Headings inside fenced code blocks are code, not
structure, and are ignored.
"""

from __future__ import annotations

import re

from studio_nb.services.knowledge.split_text import SplitConfig, sections_to_pieces
from studio_nb.services.knowledge.types import Piece

_ATX = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}\s*$")


def _clean(title: str) -> str:
    """Heading text without emphasis markers and link targets."""
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)
    return re.sub(r"[*_`]{1,3}", "", title).strip()


def _sections(
    lines: list[str], heads: dict[int, tuple[int, str]], head_len: int = 1
) -> list[tuple[str, int, int, bool]]:
    """Sections from ``{line_no: (level, title)}``: ``(path, start, end, has_body)``;
    a heading occupies ``head_len`` lines (2 for an underlined reST title)."""
    stack: list[tuple[int, str]] = []
    starts = sorted(heads)
    bounds = ([1] if not starts or starts[0] != 1 else []) + starts
    out = []
    for n, start in enumerate(bounds):
        end = bounds[n + 1] - 1 if n + 1 < len(bounds) else len(lines)
        if start in heads:
            level, title = heads[start]
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
        skip = head_len if start in heads else 0
        body = any(line.strip() for line in lines[start - 1 + skip : end])
        out.append((" > ".join(t for _, t in stack), start, end, body))
    return out


def split_markdown(text: str, cfg: SplitConfig) -> list[Piece]:
    """Pieces of a Markdown document, one per heading section (merged or split by size)."""
    lines = text.split("\n")
    heads: dict[int, tuple[int, str]] = {}
    fence: str | None = None
    for no, line in enumerate(lines, 1):
        m = _FENCE.match(line)
        if m:
            mark = m.group(1)
            if fence is None:
                fence = mark[0] * 3
            elif mark.startswith(fence):
                fence = None
            continue
        if fence is None:
            h = _ATX.match(line)
            if h and _clean(h.group(2)):
                heads[no] = (len(h.group(1)), _clean(h.group(2)))
    return sections_to_pieces(lines, _sections(lines, heads), "markdown", cfg)


def split_rst(text: str, cfg: SplitConfig) -> list[Piece]:
    """Pieces of a reStructuredText document; heading levels follow the order in which
    underline styles first appear, as docutils does."""
    lines = text.split("\n")
    styles: list[str] = []
    heads: dict[int, tuple[int, str]] = {}
    for no in range(1, len(lines)):
        title, under = lines[no - 1].rstrip(), lines[no]
        m = _RST_UNDERLINE.match(under)
        if m and title.strip() and not _RST_UNDERLINE.match(title) and len(under.rstrip()) >= len(title.strip()):
            if m.group(1) not in styles:
                styles.append(m.group(1))
            heads[no] = (styles.index(m.group(1)) + 1, title.strip())
    return sections_to_pieces(lines, _sections(lines, heads, head_len=2), "rst", cfg)
