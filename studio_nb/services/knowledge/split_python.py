"""Python source split by top-level definition, parsed with ``ast`` (never executed).

A function or class is what a coding question is about, so each is one chunk (a large
class is cut per method); the module docstring, imports and other top-level statements
between definitions form their own chunks. Comments and blank lines before a definition
belong to it, so the chunks cover every line of the file. A file that does not parse
falls back to plain line windows.
"""

from __future__ import annotations

import ast

from studio_nb.services.knowledge.split_text import SplitConfig, pack_lines, trim_blank
from studio_nb.services.knowledge.types import Piece

_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _label(node: ast.stmt) -> str:
    return f"class {node.name}" if isinstance(node, ast.ClassDef) else f"def {node.name}"


def _spans(body: list[ast.stmt], lo: int, hi: int, top: str) -> list[tuple[str, int, int, ast.stmt | None]]:
    """Contiguous ``(heading, start, end, def_node)`` spans covering lines ``lo..hi``."""
    spans: list[tuple[str, int, int, ast.stmt | None]] = []
    cursor = lo
    for node in body:
        end = node.end_lineno or node.lineno
        if isinstance(node, _DEFS):
            # comments and blank lines since the previous span lead into this def
            spans.append((_label(node), cursor, end, node))
        elif spans and spans[-1][3] is None:
            spans[-1] = (spans[-1][0], spans[-1][1], end, None)
        else:
            spans.append((top, cursor, end, None))
        cursor = end + 1
    if cursor <= hi:
        if spans and spans[-1][3] is None:
            spans[-1] = (spans[-1][0], spans[-1][1], hi, None)
        else:
            spans.append((top, cursor, hi, None))
    return spans


def split_python(text: str, cfg: SplitConfig) -> list[Piece]:
    """Pieces of a Python module; headings are ``module``, ``def f``, ``class C > def m``."""
    lines = text.split("\n")
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return pack_lines(lines, 1, len(lines), "", "python", cfg)
    out: list[Piece] = []
    for heading, start, end, node in _spans(tree.body, 1, len(lines), "module"):
        size = len("\n".join(lines[start - 1 : end]))
        if isinstance(node, ast.ClassDef) and size > cfg.max_chars and node.body:
            for sub, a, b, _ in _spans(node.body, start, end, heading):
                label = sub if sub == heading else f"{heading} > {sub}"
                out.extend(_window(lines, a, b, label, cfg))
        else:
            out.extend(_window(lines, start, end, heading, cfg))
    return out


def _window(lines: list[str], start: int, end: int, heading: str, cfg: SplitConfig) -> list[Piece]:
    start, end = trim_blank(lines, start, end)
    if start > end:
        return []
    if len("\n".join(lines[start - 1 : end])) > cfg.max_chars:
        return pack_lines(lines, start, end, heading, "python", cfg)
    return [Piece(heading, start, end, "\n".join(lines[start - 1 : end]), "python")]
