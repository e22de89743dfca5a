"""Which splitter reads which file, and turning raw bytes into text safely.

One table maps suffixes to splitters so adding a format is one line. Decoding is strict
UTF-8 (with or without BOM): a file that is binary or in another encoding is refused with
a reason rather than indexed as mojibake. With limits, a text file's characters are
counted before it is split; a PDF's pages, content and characters as it is read
(split_pdf.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from studio_nb.services.knowledge.limits import IngestControl, IngestLimits
from studio_nb.services.knowledge.split_data import split_json, split_yaml
from studio_nb.services.knowledge.split_markdown import split_markdown, split_rst
from studio_nb.services.knowledge.split_notebook import split_notebook
from studio_nb.services.knowledge.split_pdf import pypdf_available, split_pdf
from studio_nb.services.knowledge.split_python import split_python
from studio_nb.services.knowledge.split_text import SplitConfig, pack_lines
from studio_nb.services.knowledge.types import Piece


class SkipFile(Exception):
    """The file cannot be indexed; the message is the reason shown in the ingest report."""


def split_plain(text: str, cfg: SplitConfig) -> list[Piece]:
    lines = text.split("\n")
    return pack_lines(lines, 1, len(lines), "", "text", cfg)


TEXT_SPLITTERS: dict[str, Callable[[str, SplitConfig], list[Piece]]] = {
    ".md": split_markdown,
    ".markdown": split_markdown,
    ".py": split_python,
    ".ipynb": split_notebook,
    ".txt": split_plain,
    ".rst": split_rst,
    ".json": split_json,
    ".yaml": split_yaml,
    ".yml": split_yaml,
}
SUPPORTED_SUFFIXES = frozenset(TEXT_SPLITTERS) | {".pdf"}


def supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def decode(data: bytes) -> str:
    """Strict UTF-8 text with normalised newlines; SkipFile for binary or other encodings."""
    if b"\x00" in data[:8192]:
        raise SkipFile("binary file (NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SkipFile(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_file(path: Path, data: bytes, cfg: SplitConfig, limits: IngestLimits | None = None,
               control: IngestControl | None = None, name: str | None = None) -> list[Piece]:
    """The pieces of one file's bytes; SkipFile says why a file cannot be used, and
    LimitExceeded (naming the file as ``name``) that it is over ``limits``."""
    suffix = path.suffix.lower()
    name = name or path.name
    if suffix == ".pdf":
        if not pypdf_available():
            raise SkipFile("PDF skipped: pypdf is not installed (fix: pip install pypdf)")
        try:
            return split_pdf(data, cfg, limits, control, name)
        except ValueError as exc:
            raise SkipFile(str(exc)) from None
    splitter = TEXT_SPLITTERS.get(suffix)
    if splitter is None:
        raise SkipFile(f"unsupported file type {suffix!r}")
    text = decode(data)
    (limits or IngestLimits()).check("max_file_chars", len(text), f"{name} has {len(text):,} characters")
    try:
        return splitter(text, cfg)
    except (ValueError, RecursionError) as exc:  # json/yaml/notebook parse errors
        raise SkipFile(f"cannot parse {suffix} file: {str(exc)[:200]}") from None
