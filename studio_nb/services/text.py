"""Text helpers every service shares: how Chinese a text is, its terms, its identifiers.

Most of the SAGE docs are Chinese, the default embedding model is English-only, and
questions mix both with code names. Several services need the same three answers about a
text, so they live here once:

- ``cjk_share``: how much of a text is Chinese, 0.0 for English, 1.0 for Chinese
  (``studio_nb.language``, shared with the messages and front ends);
- ``terms``: the search terms of a text (``services.tokenizer``, the one tokenizer: jieba
  words and character bigrams for Chinese, stemmed lowercase words and identifier parts
  for Latin text);
- ``identifiers``: code-like names in a text (``LocalEnvironment``, ``env.submit()``,
  ``max_tokens``, ``--data-dir``), which must be matched exactly, not as words;
- ``folded`` and ``jaccard``: what two texts say, compared (case and spacing ignored; the
  overlap of two term sets).
"""

from __future__ import annotations

import re

from studio_nb.language import CJK, CJK_CHARS, cjk_share  # noqa: F401  (re-exported for the services)
from studio_nb.services.tokenizer import tokenize

CJK_RUN = re.compile(f"[{CJK_CHARS}]+")
_IDENT = re.compile(
    r"(?<![\w-])--?[a-z][\w-]+"  # command-line options (not the hyphen of "web-based")
    r"|[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+(?:\(\))?"  # dotted names, calls
    r"|[A-Za-z_]\w*\(\)"  # calls
    r"|[a-z]+(?:_[a-z0-9]+)+"  # snake_case
    r"|[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+"  # CamelCase
    r"|[A-Z]{2,}[a-z]+\w*"  # RAGPipeline, HTTPServer
)


def terms(text: str) -> list[str]:
    """Search terms of ``text`` (duplicates kept), as the full-text index sees them."""
    return tokenize(text)


def identifiers(text: str) -> list[str]:
    """Code-like names in ``text``, as written (``env.submit()``, ``max_tokens``, ``--k``)."""
    return [m.group(0) for m in _IDENT.finditer(text)]


def folded(text: str) -> str:
    """``text`` lowercased, whitespace runs as one space, no spaces at the ends."""
    return " ".join(text.split()).lower()


def jaccard(a: set[str] | frozenset[str], b: set[str] | frozenset[str]) -> float:
    """How much two term sets overlap: shared / all (0.0 when either is empty)."""
    return len(a & b) / len(a | b) if a and b else 0.0
