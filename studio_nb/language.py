"""Which script a text is written in: the one answer several layers need.

The answer's labels ("In short:" or "简而言之："), the evidence notes, the grounding
check's threshold and the retrievers' weights all depend on how Chinese a text is. This
module imports nothing, so the messages, the services and the front ends share it without
importing each other.
"""

from __future__ import annotations

import re

#: CJK ideographs, kana and hangul (the scripts written without spaces)
CJK_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
CJK = re.compile(f"[{CJK_CHARS}]")
_LATIN = re.compile(r"[A-Za-z]")


def cjk_share(text: str) -> float:
    """Share of the words of ``text`` that are Chinese/Japanese/Korean (0 for pure English),
    counted in words: one CJK character is about a word, an English word about four letters."""
    cjk, latin = len(CJK.findall(text)), len(_LATIN.findall(text))
    return cjk / (cjk + latin / 4) if cjk or latin else 0.0


def is_chinese(text: str) -> bool:
    """Whether to answer ``text`` with Chinese labels and notes."""
    return cjk_share(text) > 0.3


__all__ = ["CJK", "CJK_CHARS", "cjk_share", "is_chinese"]
