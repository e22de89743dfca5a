"""Cut a retrieved chunk into the units evidence is chosen from: sentences, lines, code.

A chunk (a section of a Markdown file, a function of an example) is too long to show as
an answer, and a fact a user asks for (a default value, a command, a parameter) usually
sits in one sentence, one list item, one table row or one short code block. Units keep
their line numbers, so every piece of evidence can be cited as ``path:L12-L14``.

Rules, in order:
- a fenced code block is one unit, cut where a new top-level import, class, function or
  decorator starts (the next example) and into runs of lines when it is long;
- list items, table rows and other short lines are one unit each, except the short last
  line of a wrapped paragraph (the rest of its sentence) and the indented lines that carry
  on a list item (the rest of the item); a list item's own marker
  (``3. ``, ``- ``, ``* ``) is not part of its text: evidence is shown under its citation
  number, and ``[2] 3. The ...`` carries a second number that means nothing out of its list;
  the item's line range still cites it;
- a paragraph of prose is cut into sentences at ``. ! ?`` followed by a space and at
  ``。！？；`` (Chinese needs no space), never inside an identifier like ``env.submit()``;
- headings are not units (they are context: they are shown with the piece, not as it);
  each unit knows the heading above it inside its chunk (``section``);
- badges and images (``[![pypi](…)](…)``, ``![alt](…)``) are left out: they say nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_LIST = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}")
# a sentence ends at .!? followed by whitespace (English) or right after 。！？；(Chinese)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(`*\[])|(?<=[。！？；])")
_CODE_START = re.compile(r"^\s*(?:from\s+[\w.]+\s+import|import\s+\w|def\s+\w|class\s+\w|return\b|@\w|#\s|\$\s|>>>)")
_SYMBOLS = re.compile(r"[^\w\s\u3400-\u9fff，。：；！？、（）“”]")
MAX_CODE_LINES = 4
_ENDS_SENTENCE = tuple("。！？；.!?;:：")


def looks_like_code(line: str) -> bool:
    """A line of code outside a fence (a chunk cut inside a code block, indented code)."""
    stripped = line.strip()
    if _CODE_START.match(stripped) or stripped.endswith(("(", "{", "[", ",")) or "-->" in stripped:
        return True
    return len(stripped) > 8 and len(_SYMBOLS.findall(stripped)) / len(stripped) > 0.15
MAX_UNIT_CHARS = 400


@dataclass(frozen=True)
class Unit:
    """One candidate piece of evidence: its text and the 1-based lines it spans."""

    text: str
    start_line: int
    end_line: int
    kind: str  # "sentence" | "line" | "code"
    lead_in: bool = False  # ends with ":"/"：" — it introduces what follows (a command, a list)
    #: what gives the unit its meaning when read alone: a table row's header row, the
    #: lead-in line of a list item ("Options:"). Scored with the unit, shown with a table row.
    context: str = ""
    #: the heading above the unit inside its chunk ("健康检查" for the ``curl …/health`` line
    #: under "### 健康检查"): a chunk's own heading names only its first section
    section: str = ""
    #: spaces taken off the front of every line of a code unit (shown alone, indentation only
    #: costs characters; shown after another unit of the same code, it keeps its depth)
    indent: int = 0


#: a linked image (a badge: ``[![pypi](…svg)](…)``) or an image (``![alt](…png)``)
_IMAGES = re.compile(r"\[!\[[^\]]*\]\([^)]*\)\]\([^)]*\)|!\[[^\]]*\]\([^)]*\)")


def _clean(line: str) -> str:
    return line.strip()


def _sentences(paragraph: list[tuple[int, str]]) -> list[Unit]:
    """Sentences of a prose paragraph (lines joined), each with the lines it spans."""
    out: list[Unit] = []
    text, starts = "", []  # starts[i] = (offset in text, line number)
    for no, line in paragraph:
        if text and not text.endswith(" ") and not re.search(r"[\u3400-\u9fff]$", text):
            text += " "
        starts.append((len(text), no))
        text += line.strip()
    pos = 0
    pieces = [p for p in _SENTENCE_END.split(text)]
    for piece in pieces:
        begin = text.find(piece, pos)
        end = begin + len(piece)
        pos = end
        begin += len(piece) - len(piece.lstrip())  # the sentence starts at its first letter
        sentence = piece.strip()
        if not sentence:
            continue
        first = max(no for off, no in starts if off <= begin) if starts else 0
        last = max(no for off, no in starts if off < max(end, begin + 1))
        out.append(Unit(sentence[:MAX_UNIT_CHARS], first, last, "sentence", sentence.endswith((":", "："))))
    return out


#: a line that only closes brackets (and maybe ends a statement): ``)``, ``},``, ``])``
_CLOSERS = re.compile(r"^\s*[)\]}]+[,;:]?\s*$")
_TOP_LEVEL = re.compile(r"(?:from\s+[\w.]+\s+import|import\s|class\s|def\s|async\s+def\s|@)")


def _code_units(run: list[tuple[int, str]], max_lines: int = MAX_CODE_LINES) -> list[Unit]:
    """Units of consecutive code lines: cut where a new top-level import, class, function or
    decorator starts (the next thought of the example) and at ``max_lines``."""
    groups: list[list[tuple[int, str]]] = []
    for no, line in run:
        starts = bool(_TOP_LEVEL.match(line)) and groups and not _TOP_LEVEL.match(groups[-1][-1][1])
        if not groups or starts:
            groups.append([])
        groups[-1].append((no, line))
    units = []
    for group in groups:
        for i in range(0, len(group), max_lines):
            part = group[i : i + max_lines]
            while part and _CLOSERS.match(part[0][1]):  # the end of a call the chunk cut: ")" says nothing
                part = part[1:]
            if part:
                units.append(Unit("\n".join(line.rstrip() for _, line in part), part[0][0], part[-1][0], "code"))
    return units


def split_code(text: str, start_line: int = 1, max_lines: int = MAX_CODE_LINES) -> list[Unit]:
    """Units of source code: runs of non-blank lines (a statement group, a docstring), cut
    at ``max_lines``; the blank lines a programmer left are where the thoughts change."""
    units: list[Unit] = []
    run: list[tuple[int, str]] = []

    def flush() -> None:
        units.extend(_code_units(run, max_lines))
        run.clear()

    for offset, raw in enumerate(text.split("\n")):
        if raw.strip():
            run.append((start_line + offset, raw))
        elif run:
            flush()
    if run:
        flush()
    return units


def split_units(text: str, start_line: int = 1, *, code: bool = False) -> list[Unit]:
    """The units of a chunk whose first line is line ``start_line`` of its file
    (``code=True`` for a chunk of a source file rather than of a document)."""
    if code:
        return split_code(text, start_line)
    units: list[Unit] = []
    lines = text.split("\n")
    paragraph: list[tuple[int, str]] = []
    code: list[tuple[int, str]] = []
    fence: str | None = None
    table_header = ""  # the first row of the table being read
    lead_in = ""  # the last line that introduced a list ("Options:")
    lead_indent = -1  # the indentation of the list item that is the lead-in (-1: not an item)
    section = ""  # the last heading read
    start = 0  # units before this index get ``section`` when the next heading comes
    last_item, last_item_indent = -1, 0  # the last list item's unit index and indentation

    def label() -> None:
        nonlocal start
        if section:
            units[start:] = [replace(u, section=section) for u in units[start:]]
        start = len(units)

    def flush_paragraph() -> None:
        if paragraph:
            units.extend(_sentences(paragraph))
            paragraph.clear()

    def flush_code() -> None:
        units.extend(_code_units([(no, line) for no, line in code if line.strip()]))
        code.clear()

    for offset, raw in enumerate(lines):
        no = start_line + offset
        m = _FENCE.match(raw)
        if m:
            if fence is None:
                flush_paragraph()
                fence = m.group(1)[0] * 3
            elif m.group(1).startswith(fence):
                flush_code()
                fence = None
            continue
        if fence is not None:
            code.append((no, raw))
            continue
        if "![" in raw:  # badges and pictures: their alt text and URLs say nothing as evidence
            raw = re.sub(r"(?<=\S) {2,}", " ", _IMAGES.sub("", raw))
            if not raw.strip() or set(raw.strip()) <= set("[]() |"):
                continue  # a line of badges (a blank line would end the paragraph around it)
        line = _clean(raw)
        if not line:
            flush_paragraph()
            table_header = lead_in = ""
            continue
        if _HEADING.match(raw) or _TABLE_RULE.match(raw) or set(line) <= set("-=*_|:# "):
            flush_paragraph()
            if _HEADING.match(raw):
                label()
                section = line.lstrip("#").strip()
                table_header = lead_in = ""
            continue
        if "|" in line and (line.startswith("|") or line.count("|") >= 2):
            flush_paragraph()
            row = " | ".join(c.strip() for c in line.strip("|").split("|"))
            if not table_header:
                table_header = row
            units.append(Unit(row[:MAX_UNIT_CHARS], no, no, "line", False, "" if row == table_header else table_header))
            continue
        item = _LIST.match(raw)
        indent = len(raw) - len(raw.lstrip())
        if (not item and units and last_item == len(units) - 1 and units[-1].end_line == no - 1
                and indent > last_item_indent and not units[-1].lead_in):
            # the wrapped rest of a list item ("- **作者**：Jiajie Jin, ..., Qi" / "  Ye, Zhicheng Dou")
            prev = units[-1]
            glue = "" if re.search(r"[\u3400-\u9fff]$", prev.text) or re.match(r"[\u3400-\u9fff]", line) else " "
            whole = prev.text + glue + line
            units[-1] = replace(prev, text=whole[:MAX_UNIT_CHARS], end_line=no,
                                lead_in=whole.endswith((":", "：")) and not looks_like_code(whole))
            if units[-1].lead_in:  # the whole item now leads in its own sub-items
                lead_in, lead_indent = units[-1].text, last_item_indent
            continue
        if (paragraph and not item and indent < 4 and len(line) < 60 and not looks_like_code(raw)
                and not paragraph[-1][1].rstrip().endswith(_ENDS_SENTENCE)):
            paragraph.append((no, raw))  # the short last line of a wrapped paragraph: its sentence goes on
            continue
        if item or raw.startswith(("    ", "\t")) or len(line) < 60:
            # list items, indented code and short lines stand on their own
            flush_paragraph()
            if item:  # "3. The `context` ..." -> "The `context` ..." (also keeps "3." from reading as a sentence)
                line = raw[item.end() :].strip()
            if units and units[-1].lead_in and units[-1].end_line >= no - 1:
                lead_in, lead_indent = units[-1].text, -1
            if item and indent <= lead_indent:  # a sibling of the item that led in, not one of its own
                lead_in, lead_indent = "", -1
            is_lead = line.endswith((":", "：")) and not looks_like_code(line)
            kind = "code" if not item and looks_like_code(raw) else "line"
            if kind == "line" and len(_SENTENCE_END.split(line)) > 2:  # "一句。两句！" on one short line
                units.extend(_sentences([(no, line)]))
            else:
                units.append(Unit(line[:MAX_UNIT_CHARS], no, no, kind, is_lead, lead_in if item else ""))
            if is_lead:  # a list item that leads in leads its own sub-items only
                lead_in, lead_indent = line, (indent if item else -1)
            if item:
                last_item, last_item_indent = len(units) - 1, indent
            continue
        paragraph.append((no, raw))
    flush_paragraph()
    if code:  # an unclosed fence (a chunk cut inside a code block)
        flush_code()
    label()
    return units
