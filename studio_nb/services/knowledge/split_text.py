"""Line-preserving splitting shared by every format: pack lines into windows, merge crumbs.

Every splitter reduces a file to sections of whole lines, so a chunk's text is exactly
lines ``start_line..end_line`` of the file and a source reference can point a reader (or
an editor) at it. Long sections are cut at a blank line where one is near, with a few
lines of overlap so a sentence cut in two still appears whole in one of the chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio_nb.services.knowledge.types import Piece


@dataclass(frozen=True)
class SplitConfig:
    """Chunk sizes in characters: ``max_chars`` a window, ``overlap_chars`` carried over,
    ``min_chars`` below which neighbouring sections are merged."""

    max_chars: int = 1200
    overlap_chars: int = 150
    min_chars: int = 300


def _text(lines: list[str], start: int, end: int) -> str:
    """Lines ``start..end`` (1-based, inclusive) joined back into text."""
    return "\n".join(lines[start - 1 : end])


def trim_blank(lines: list[str], start: int, end: int) -> tuple[int, int]:
    """Shrink a 1-based inclusive range so it neither starts nor ends on a blank line."""
    while start <= end and not lines[start - 1].strip():
        start += 1
    while end >= start and not lines[end - 1].strip():
        end -= 1
    return start, end


def pack_lines(
    lines: list[str], start: int, end: int, heading: str, kind: str, cfg: SplitConfig
) -> list[Piece]:
    """Split lines ``start..end`` of ``lines`` into pieces of at most ``cfg.max_chars``.

    A single line longer than the window is cut into character slices that all carry that
    line's number (the only case where a piece is not whole lines).
    """
    start, end = trim_blank(lines, start, end)
    out: list[Piece] = []
    i = start
    while i <= end:
        line = lines[i - 1]
        if len(line) > cfg.max_chars:
            step = max(cfg.max_chars - cfg.overlap_chars, 1)
            for off in range(0, len(line), step):
                out.append(Piece(heading, i, i, line[off : off + cfg.max_chars], kind))
                if off + cfg.max_chars >= len(line):
                    break
            i += 1
            continue
        size, j, blank = 0, i, None
        while j <= end and len(lines[j - 1]) <= cfg.max_chars and (j == i or size + len(lines[j - 1]) + 1 <= cfg.max_chars):
            size += len(lines[j - 1]) + 1
            if j > i and not lines[j - 1].strip() and size >= cfg.max_chars // 2:
                blank = j
            j += 1
        stop = j - 1
        if j <= end and blank is not None:
            stop = blank - 1
        a, b = trim_blank(lines, i, stop)
        if a <= b:
            out.append(Piece(heading, a, b, _text(lines, a, b), kind))
        if stop >= end:
            break
        if stop == j - 1 and len(lines[j - 1]) > cfg.max_chars:
            i = j  # the next line is cut by characters; no overlap into it
            continue
        k, carried = stop + 1, 0
        while k - 1 > i and carried + len(lines[k - 2]) + 1 <= cfg.overlap_chars:
            k -= 1
            carried += len(lines[k - 1]) + 1
        i = k
    return out


def sections_to_pieces(
    lines: list[str], sections: list[tuple[str, int, int, bool]], kind: str, cfg: SplitConfig
) -> list[Piece]:
    """Turn contiguous ``(heading, start, end, has_body)`` sections into pieces.

    Consecutive small sections are merged (a heading with no text of its own is useless
    as a chunk); the merged piece is named after its first section with a body.
    Sections longer than the window are packed with overlap.
    """
    out: list[Piece] = []
    group: list[tuple[str, int, int, bool]] = []

    def flush() -> None:
        if not group:
            return
        heading = next((h for h, _, _, body in group if body), group[-1][0])
        a, b = group[0][1], group[-1][2]
        if len(_text(lines, a, b)) > cfg.max_chars:
            out.extend(pack_lines(lines, a, b, heading, kind, cfg))
        else:
            a, b = trim_blank(lines, a, b)
            if a <= b:
                out.append(Piece(heading, a, b, _text(lines, a, b), kind))
        group.clear()

    for sec in sections:
        if group and any(body for *_, body in group):
            size = len(_text(lines, group[0][1], group[-1][2]))
            if size >= cfg.min_chars or size + len(_text(lines, sec[1], sec[2])) > cfg.max_chars:
                flush()
        group.append(sec)
    if group and out:
        # a small last section joins the piece before it rather than standing alone
        a, b = out[-1].start_line, group[-1][2]
        if len(_text(lines, group[0][1], b)) < cfg.min_chars and len(_text(lines, a, b)) <= cfg.max_chars:
            a, b = trim_blank(lines, a, b)
            out[-1] = Piece(out[-1].heading, a, b, _text(lines, a, b), kind)
            group.clear()
    flush()
    return out
