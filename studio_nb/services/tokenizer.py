"""The one tokenizer: search terms for Chinese and English (and code) in the same text.

Every lexical comparison in studio-nb uses it — the knowledge base's full-text index (at
ingest and at query time), the evidence selector and the grounding check (through
``services.text.terms``) and conversation memory's recall — so a word matches the same
way everywhere. It imports only ``studio_nb.language``, so any module may import it.

Most of the SAGE docs are Chinese while the default embedding model only knows English,
so the lexical retriever carries Chinese questions. Chinese runs are segmented with jieba
(search mode, which also yields the short words inside long ones) and, for words jieba's
dictionary lacks, overlapping character bigrams. Latin text becomes lowercase words with
light suffix stripping and stopwords removed; identifiers also yield their parts
(``LocalEnvironment`` -> ``localenvironment local environment``) so code and prose meet.
jieba is imported on first use, with its start-up chatter silenced.
"""

from __future__ import annotations

import logging
import re
import threading

from studio_nb.language import CJK_CHARS

_RUN = re.compile(f"([{CJK_CHARS}]+)|([^{CJK_CHARS}]+)")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*|\d+(?:\.\d+)*")
_CAMEL = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

EN_STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does doing for from had has have how
    i if in into is it its me my no not of on or our so than that the their them then there
    these they this those to too us was we were what when where which while who whom why will
    with would you your about should via use using used get""".split()
)
ZH_STOPWORDS = frozenset(
    """的 了 是 在 和 与 及 或 等 也 就 都 而 被 把 对 从 向 以 之 其 这 那 这个 那个 这些 那些
    一个 一种 我们 你们 他们 我 你 他 她 它 有 没有 为 中 上 下 如何 怎么 怎样 什么 哪些 哪个
    吗 呢 吧 啊 可以 能 会 要 需要 进行 使用 通过 如果 因为 所以 但是 然后 还 并 及其 其中""".split()
)

_jieba = None
_jieba_lock = threading.Lock()


def _segmenter():
    """jieba, imported and initialised once (about a second for its dictionary)."""
    global _jieba
    if _jieba is None:
        with _jieba_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                jieba.initialize()
                _jieba = jieba
    return _jieba


def warm_up() -> None:
    _segmenter()


def stem(word: str) -> str:
    """A deliberately light English stemmer: plurals, -ing, -ed, a final -e."""
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]
            break
    if word.endswith("e") and len(word) > 4:
        word = word[:-1]
    return word


def _latin(text: str, out: list[str]) -> None:
    for m in _WORD.finditer(text):
        raw = m.group(0)
        low = raw.lower()
        if low not in EN_STOPWORDS and len(low) > 1:
            out.append(stem(low))
        parts = [p.lower() for p in _CAMEL.findall(raw.replace("_", " "))] if not raw[0].isdigit() else []
        if len(parts) > 1:
            out.extend(stem(p) for p in parts if len(p) > 1 and p not in EN_STOPWORDS)


def _cjk(run: str, out: list[str], bigrams: bool) -> None:
    for word in _segmenter().cut_for_search(run):
        if len(word) > 1 and word not in ZH_STOPWORDS:
            out.append(word)
    if bigrams:
        out.extend(b for b in (run[i : i + 2] for i in range(len(run) - 1)) if b not in ZH_STOPWORDS)


def tokenize(text: str, bigrams: bool = True) -> list[str]:
    """Search terms of ``text`` (order kept, duplicates kept: term frequency matters)."""
    out: list[str] = []
    for m in _RUN.finditer(text):
        if m.group(1):
            _cjk(m.group(1), out, bigrams)
        else:
            _latin(m.group(2), out)
    return out
