"""Which span of one passage a generated sentence restates: its words, in order, aligned.

The grounding check (``grounding.py``) keeps a sentence only when a careful reader would say
"this passage says that". Lexically, that is a sentence whose content words follow one stretch
of one passage in the same order, allowing the function words, light inflection ("configured"
for "configures") and a local swap ("30000 by default" for "default 30000") that a faithful
restatement has. This module finds that stretch:

- ``span_tokens`` turns text into its content tokens, in order: lowercase Latin words (a
  hyphenated compound such as "service-to-service" is one token: it names one thing), numbers
  with their unit ("4gb"), and each Chinese character (Chinese has no spaces, and a character
  chain aligned in order is a strong signal); function words are left out, "n't"/"cannot"
  become "not" so that a negation stays visible;
- ``Passage`` holds a passage's tokens once, with where each occurs and where its sentences
  and lines end;
- ``Passage.align(words)`` returns the longest chain of the sentence's tokens found in the
  passage in sentence order, each at most ``reach`` tokens after the previous one (or two
  before it: a local swap). Sentence words outside the chain are what the passage does not say
  there.

A chain is found by dynamic programming over the occurrences of each word (a few per word),
so a check costs well under a millisecond per passage.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*|[\u3400-\u9fff]")
#: where a passage's sentences and lines end (a chain may cross them; a sentence's last word may stop at them)
_BOUNDARY = re.compile(r"(?<=[.!?;:。！？；：])\s|\n")
#: words a restatement may add or drop freely: articles, auxiliaries, pronouns, prepositions, talk about the answer
STOP = frozenset(
    "a an the of to in on at by for and or is are be been being was were it its this that these those with as from "
    "can could you your we our they their he she which who whom what when where how why then than there here has have "
    "had do does did will would should may might also so such into onto about over under via per each any some if else "
    "both either neither just very more most much many other another one i me my us answer question "
    "的 了 是 在 和 与 或 及 为 将 把 被 也 都 就 而 等 中 上 个 这 那 其 之 以 于 对 从 到 会 可 能 要 你 我 们 它 他 她 该".split()
)
#: words that turn a claim around; a sentence and the span it restates must agree on them
NEGATION = frozenset("not no never without none 不 没 未 无 非 勿".split())
#: words that narrow or strengthen a claim; a sentence may not add them to what its span says
QUALIFIERS = frozenset("only must always never all 仅 只 必 须 总".split())


def stem(word: str) -> str:
    """A light stem, enough to match "configured"/"configures"/"configure" and "uses"/"using"."""
    if not word.isalpha() or len(word) <= 3:
        return word
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: -len(suffix)]
            break
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def span_tokens(text: str) -> list[str]:
    """The content tokens of ``text`` in order (see the module docstring)."""
    text = re.sub(r"\bcannot\b", "can not", re.sub(r"n't\b", " not", text.lower()))
    return [stem(t) for t in _TOKEN.findall(text) if t not in STOP]


def is_number(token: str) -> bool:
    return token[:1].isdigit()


def _other_row(skipped: list[str]) -> bool:
    """Skipped tokens that hold another value with its own label ("8000 studio" between "gateway"
    and "8080"): a step over them moves to another row of a table."""
    return any(map(is_number, skipped)) and not all(map(is_number, skipped))


def is_cjk(token: str) -> bool:
    return "\u3400" <= token[:1] <= "\u9fff"


class Passage:
    """One evidence passage, tokenized once: tokens, where each occurs, where sentences end."""

    def __init__(self, text: str) -> None:
        self.tokens: list[str] = []
        self.ends: set[int] = set()  # indexes of tokens that end a sentence or a line
        self.sentence: list[int] = []  # for each token, which sentence or line of the passage it is in
        for n, part in enumerate(_BOUNDARY.split(text)):
            words = span_tokens(part)
            self.tokens += words
            self.sentence += [n] * len(words)
            if self.tokens:
                self.ends.add(len(self.tokens) - 1)
        self.positions: dict[str, list[int]] = {}
        for i, token in enumerate(self.tokens):
            self.positions.setdefault(token, []).append(i)

    def leads_to(self, word: str, position: int) -> bool:
        """``word`` stands before ``position`` in the same sentence or line: the subject of what is said there."""
        return any(p < position and self.sentence[p] == self.sentence[position] for p in self.positions.get(word, ()))

    def align(self, words: list[str], reach: int = 4, swap: int = 2, *, keep_numbers: bool = False,
              weights: list[float] | None = None) -> list[tuple[int, int]]:
        """The chain of ``(index in words, position in the passage)`` worth most, in sentence order, each
        step at most ``reach`` tokens forward in the passage (twice as many to a Chinese character: a
        word is two of them) or ``swap`` back. ``keep_numbers``: a step may not skip a number that has
        a label of its own (a sentence that states a number must not pass the table row's own one).
        ``weights``: what each word is worth (1 each by default; the grounding check gives the
        question's words less, so a tie goes to the words the answer adds)."""
        best: dict[int, tuple[float, tuple[int, int]]] = {}  # passage position -> (chain worth, chain end)
        parent: dict[tuple[int, int], tuple[int, int] | None] = {}
        top: tuple[float, tuple[int, int]] | None = None
        for i, word in enumerate(words):
            found = {}
            ahead = reach * 2 if is_cjk(word) else reach
            worth = weights[i] if weights else 1.0
            for p in self.positions.get(word, ()):
                length, before = worth, None
                for q in range(p - ahead, p + swap + 1):
                    if q == p or q not in best or best[q][0] + worth <= length:
                        continue
                    if keep_numbers and q < p and _other_row(self.tokens[q + 1 : p]):
                        continue
                    length, before = best[q][0] + worth, best[q][1]
                parent[(i, p)] = before
                found[p] = (length, (i, p))
                if top is None or length > top[0]:
                    top = (length, (i, p))
            for p, entry in found.items():  # after the loop: a word is used once per chain
                if p not in best or entry[0] >= best[p][0]:
                    best[p] = entry
        chain: list[tuple[int, int]] = []
        node = top[1] if top else None
        while node is not None:
            chain.append(node)
            node = parent[node]
        return chain[::-1]
