"""Fact coverage as scored for questions written outside the team (``../shared/eval/README.md``).

A reference fact counts as covered when at least 60 % of its key tokens occur in the first
1,000 characters of the answer. Key tokens: ASCII identifiers, numbers and paths of two or
more characters, lower-cased, minus a few stop words; Chinese runs as character bigrams (a
lone character as itself). Every question set in bench/ is scored with this one function, so
the figures of the project's own set, ``foreign_dev.jsonl`` and the second corpus compare.
"""

from __future__ import annotations

import re

WINDOW = 1000
THRESHOLD = 0.6
#: an identifier, a number or a path: letters, digits and the punctuation that joins them
_ASCII = re.compile(r"[A-Za-z0-9_]+(?:[./][A-Za-z0-9_]+)*")
_CJK = re.compile(r"[\u3400-\u9fff]+")
_STOP = frozenset(
    "the a an and or of to in on for with by is are be it its as at this that from into can not "
    "you your use using e.g eg".split()
)


def key_tokens(text: str) -> list[str]:
    """The tokens of ``text`` a fact is matched by (see the module docstring)."""
    out = []
    for m in _ASCII.finditer(text):
        tok = m.group(0).lower()
        if len(tok) >= 2 and tok not in _STOP:
            out.append(tok)
    for run in _CJK.findall(text):
        out += [run[i : i + 2] for i in range(len(run) - 1)] or [run]
    return out


def fact_covered(fact: str, text: str, *, window: int = WINDOW) -> bool:
    """True when 60 % of the fact's key tokens occur in the first ``window`` characters of ``text``."""
    wanted = set(key_tokens(fact))
    if not wanted:
        return False
    have = set(key_tokens(text[:window]))
    # the parts of a dotted name or path count too: "stop" is in "env.stop()"
    have |= {p for t in have for p in re.split(r"[./]", t) if len(p) >= 2}
    found = sum(1 for t in wanted if t in have)
    return found / len(wanted) >= THRESHOLD


def coverage(text: str, facts: list[str], *, window: int = WINDOW) -> float:
    """The share of ``facts`` covered by ``text``."""
    return sum(fact_covered(f, text, window=window) for f in facts) / len(facts) if facts else 0.0
