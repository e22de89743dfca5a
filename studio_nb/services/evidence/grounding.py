"""Is each generated sentence supported by the evidence? Keep it, or drop it and say why.

A small model asked to answer from a few passages will still invent: a port number that
is not in them, a method name that sounds right, a cheerful sentence about itself. A
sentence of the synthesis is kept only when

1. every *claim* it makes can be found in the evidence or the question: numbers, code
   names (``env.submit()``, ``max_tokens``, ``LocalEnvironment``), paths and ``quoted``
   code — these are what a user would copy, so they must be exact;
2. most of its content words are there too (``min_support`` of its terms, counted the
   way the search index counts them, so Chinese works: jieba words and bigrams);
3. it says something new: a sentence with no content word ("Sure!") is filler and removed
   silently; one that loops, repeats an earlier sentence, or only restates the question
   is dropped;
4. it is finished: when the model ran out of tokens, its last, cut-off sentence is dropped;
5. it is in the language of the question (code and names aside).

Chinese sentences need more of their terms supported (``min_support_cjk``): their terms
include character bigrams, and common bigrams are found in almost any evidence.

Rules 1 and 2 hold for *one* piece of evidence (with the question), not for all of them
pooled, and a third rule checks word order, as a loose alignment: of the sentence's content
words found in that piece, most consecutive pairs (``min_order``) must stand in the piece
at most ``reach`` words apart (a local swap, "default 30000" for "30000 by default", is
allowed). A sentence whose words are all somewhere in the evidence but which says
something no passage says ("Sage runs the task status in the JobManager after 5 minutes",
put together from three passages) fails it; a sentence that follows one passage, even with
a few words of its own in between, passes.

A generated code block is kept when code was asked for (``allow_code``; its local names
are the model's to choose), but the library names it imports or instantiates are checked
like claims, and those not found in the evidence are reported in ``Verdict.unverified`` so
the user sees which parts of the code the sources do not back. An unterminated block (the
model ran out of tokens inside it) is dropped, and so is code in an answer to a question
that did not ask for any.

Citations like ``[2]`` are checked too: a number that names no piece of evidence is
removed from the sentence. The checker is deliberately lexical and strict: it cannot
tell a faithful paraphrase in other words from an invention, so it prefers to drop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from studio_nb.services.text import cjk_share, folded, identifiers, jaccard, terms

_CITE = re.compile(r"\s*\[(\d{1,2})\]")
_LEAD_CITE = re.compile(r"^(\[\d{1,2}\])\s+")
#: a number, with the unit written against it ("1024MB", "8GB", "95%") — the unit is part of the claim
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:]\d+)*(?:[A-Za-z]{1,3}|%)?(?![\w])")
_PATH = re.compile(r"(?:[\w.-]+/)+[\w.-]+|\b[\w-]+\.(?:py|md|yaml|yml|json|toml|txt|ipynb|sh|cfg)\b")
_QUOTED = re.compile(r"`([^`\n]{1,80})`")
_FENCE = re.compile(r"```[^\n]*\n.*?(?:```|\Z)", re.DOTALL)
#: library names a code block relies on: what it imports, and the classes it instantiates
_IMPORT = re.compile(r"^\s*(?:from\s+([\w.]+)\s+import\s+([\w, ]+)|import\s+([\w.]+))", re.M)
_CLASS_CALL = re.compile(r"\b([A-Z][A-Za-z0-9]+)\s*\(")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(`*\[])|(?<=[。！？；])|\n+")
_ENDS = re.compile(r"[.!?。！？；…)\]\"'`]\s*$")
#: words that make a sentence an interjection, not a statement ("Sure!", "好的。")
_FILLER = frozenset("sure ok okay yes certainly great well hi hello thank thanks right indeed here answer 好的 当然 是的 你好 谢谢".split())
#: numbers too small or common to be claims ("1 sentence", "step 2")
_TRIVIAL_NUMBERS = frozenset({"0", "1", "2", "3"})


@dataclass(frozen=True)
class Verdict:
    """One sentence of a synthesis and what the check decided about it."""

    text: str  # the sentence as it will be shown (invalid citations removed)
    kept: bool
    reason: str | None = None  # why it was dropped
    support: float = 1.0  # share of its content terms found in the evidence
    filler: bool = False  # dropped silently: it said nothing
    unverified: tuple[str, ...] = ()  # in a kept code block: API names the evidence does not show


def split_sentences(text: str) -> list[str]:
    """Sentences of generated text; a fenced code block is one 'sentence'."""
    out: list[str] = []
    pos = 0
    for m in _FENCE.finditer(text):
        out.extend(s for s in _SENTENCE.split(text[pos : m.start()]) if s and s.strip())
        out.append(m.group(0).strip())
        pos = m.end()
    out.extend(s for s in _SENTENCE.split(text[pos:]) if s and s.strip())
    return [s.strip() for s in out]


def _copied(sentence: str, source: str, min_chars: int = 120) -> bool:
    """The model pasted a passage back: a long stretch of the evidence word for word, or one
    that starts like an evidence line (``[2] ...``). A short faithful restatement is kept."""
    bare = folded(_CITE.sub("", sentence)).strip(" .。")
    pasted = bool(re.match(r"\s*\[\d{1,2}\]", sentence)) and len(bare) >= 20
    return (pasted or len(bare) >= min_chars) and bare in source


def _other_language(sentence: str, question: str) -> bool:
    """A Chinese sentence answering an English question, or an English one a Chinese question
    (names and code aside): the asker reads one language, and the check reads it too."""
    bare = _QUOTED.sub(" ", _CITE.sub("", sentence))
    bare = re.sub(r"[A-Za-z_][\w.]*[._(][\w.()]*|[A-Z][a-z]+[A-Z]\w*", " ", bare)  # identifiers
    return (cjk_share(bare) > 0.3) != (cjk_share(question) > 0.3)


def _found(claim: str, haystack: str) -> bool:
    claim = folded(claim).strip("().,;:`'\" ")
    return not claim or claim in haystack or claim.replace("()", "") in haystack


#: content words for the order check: Latin words and numbers, each CJK character
_ORDER_TOKEN = re.compile(r"[a-z0-9_]+|[\u3400-\u9fff]")
_ORDER_STOP = frozenset(
    "a an the of to in on at by for and or is are be was it its this that with as from can you your "
    "的 了 是 在 和 与 或 及 为 将 把 被 也 都 就 而 等 中 上".split()
)


def order_tokens(text: str) -> list[str]:
    """The content words of ``text`` in order (see ``_ORDER_TOKEN``), plural "s" stripped."""
    words = (t for t in _ORDER_TOKEN.findall(text.lower()) if t not in _ORDER_STOP)
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]


class _Piece:
    """One evidence piece, prepared once per check: folded text, terms, word positions."""

    def __init__(self, text: str) -> None:
        self.source = folded(text)
        self.terms = set(terms(text))
        self.positions: dict[str, list[int]] = {}
        for i, t in enumerate(order_tokens(text)):
            self.positions.setdefault(t, []).append(i)

    def near(self, a: str, b: str, reach: int) -> bool:
        """``a`` and ``b`` stand in the piece at most ``reach`` words apart."""
        other = self.positions.get(b)
        if not other:
            return False
        return any(0 < abs(j - i) <= reach for i in self.positions.get(a, ()) for j in other)


class GroundingChecker:
    """``check(text, evidence, question)`` -> one Verdict per sentence (see module docstring)."""

    def __init__(self, min_support: float = 0.8, min_support_cjk: float = 0.8, min_order: float = 0.8,
                 reach: int = 4, restate: float = 0.15) -> None:
        self.min_support = min_support
        self.min_support_cjk = min_support_cjk
        self.min_order = min_order
        self.reach = reach
        self.restate = restate

    def claims(self, sentence: str) -> list[str]:
        """What in ``sentence`` must appear verbatim in the evidence."""
        found = [m.group(0) for m in _NUMBER.finditer(sentence) if m.group(0) not in _TRIVIAL_NUMBERS]
        found += identifiers(sentence)
        found += [m.group(0) for m in _PATH.finditer(sentence)]
        found += [m.group(1) for m in _QUOTED.finditer(sentence)]
        return found

    def check(
        self, text: str, evidence: Sequence[str], question: str = "", *, allow_code: bool = False,
        truncated: bool = False,
    ) -> list[Verdict]:
        """One Verdict per sentence of ``text``; ``truncated``: the model hit its token limit."""
        source = folded("\n".join(evidence) + "\n" + question)
        asked = set(terms(question))
        pieces = [_Piece(e) for e in evidence] or [_Piece("")]
        q_piece = _Piece(question)
        n_pieces = len(evidence)
        sentences = split_sentences(text)
        verdicts: list[Verdict] = []
        seen: list[set[str]] = []
        for i, raw in enumerate(sentences):
            sentence = _CITE.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= n_pieces else "", raw).strip()
            lead = _LEAD_CITE.match(sentence)  # "[1] A ParallelGroup ..." reads better as "A ParallelGroup ... [1]"
            if lead and not sentence.startswith("```"):
                body = sentence[lead.end():].rstrip()
                stop = body[-1] if body and body[-1] in ".!?。！？" else ""
                sentence = f"{body[:-1] if stop else body} {lead.group(1)}{stop}".strip()
            last = i == len(sentences) - 1
            if last and truncated and not sentence.startswith("```") and not _ENDS.search(sentence):
                verdicts.append(Verdict(sentence, False, "cut off mid-sentence", 0.0))
                continue
            if question and not sentence.startswith("```") and _other_language(sentence, question):
                verdicts.append(Verdict(sentence, False, "not in the language of the question", 0.0))
                continue
            verdict = self.check_sentence(sentence, pieces, q_piece, source, allow_code=allow_code)
            own = set(terms(_CITE.sub("", sentence)))
            new = own - asked
            if verdict.kept and own and len(new) <= self.restate * len(own) and not any(
                    c for c in self.claims(sentence) if not _found(c, folded(question))):
                verdict = Verdict(sentence, False, "only restates the question", verdict.support)
            elif verdict.kept and _copied(sentence, source):  # said already, just above: silently left out
                verdict = Verdict(sentence, False, "only repeats the evidence", verdict.support, filler=True)
            elif verdict.kept and any(jaccard(own, earlier) > 0.8 for earlier in seen):
                verdict = Verdict(sentence, False, "repeats an earlier sentence", verdict.support)
            if verdict.kept:
                seen.append(own)
            verdicts.append(verdict)
        # "It runs three branches:" with nothing kept after it introduces nothing
        kept = [i for i, v in enumerate(verdicts) if v.kept]
        if kept and verdicts[kept[-1]].text.rstrip().endswith((":", "：")):
            v = verdicts[kept[-1]]
            verdicts[kept[-1]] = Verdict(v.text, False, "introduces something that is not there", v.support)
        return verdicts

    def check_sentence(self, sentence: str, pieces: list[_Piece], question: _Piece, source: str, *,
                       allow_code: bool = False) -> Verdict:
        """The verdict on one sentence: supported by one piece of evidence (with the question), or not."""
        from studio_nb.services.evidence.loops import find_loop

        if sentence.startswith("```"):
            if not sentence.rstrip().endswith("```") or sentence.rstrip() == "```":
                return Verdict(sentence, False, "an unfinished code block", 0.0)
            if allow_code:
                return self.check_code(sentence, source)
        bare = _CITE.sub("", sentence)
        own = set(terms(bare))
        if not own or own <= _FILLER:
            return Verdict(sentence, False, "says nothing", 0.0, filler=True)
        if find_loop(bare) is not None:
            return Verdict(sentence, False, "repeats itself", 0.0)
        claims = self.claims(bare)
        words = order_tokens(bare)
        needed = self.min_support_cjk if cjk_share(bare) > 0.3 else self.min_support
        best: tuple[float, float, str] = (-1.0, 0.0, "")
        for piece in pieces:
            haystack = piece.source + "\n" + question.source
            missing = [c for c in claims if not _found(c, haystack)]
            if not missing:  # a claim must stand in the piece beside what the sentence says of it
                missing = [c for c in claims if not _found(c, question.source) and not self._anchored(c, words, piece)]
            support = len(own & (piece.terms | question.terms)) / len(own)
            ordered = self._aligned(words, piece, question)
            if not missing and support >= needed and ordered >= self.min_order:
                return Verdict(sentence, True, None, support)
            if missing:
                why = f"states {missing[0]!r}, which no source says of this"
            elif support < needed:
                why = f"only {support:.0%} of its words are in one source"
            else:
                why = f"its words are in the sources, but not in this order ({ordered:.0%} of word pairs)"
            score = support + ordered - len(missing)
            if score > best[0]:
                best = (score, support, why)
        return Verdict(sentence, False, best[2], best[1])

    def _anchored(self, claim: str, words: list[str], piece: _Piece) -> bool:
        """The claim ("8080") stands in the piece near a word that stands beside it in the sentence
        ("gateway ... 8080"): a port of the table's next row is not the gateway's port."""
        own = order_tokens(claim)
        if not own or own[0] not in words:
            return True
        i = words.index(own[0])
        beside = [w for w in (words[i - 1] if i else None, words[i + len(own)] if i + len(own) < len(words) else None)
                  if w is not None and w not in own]
        return not beside or any(piece.near(w, own[0], self.reach) for w in beside)

    def _aligned(self, words: list[str], piece: _Piece, question: _Piece) -> float:
        """Of the sentence's words found in ``piece`` (or the question), the share of consecutive
        pairs that stand close together there too: 1.0 for a sentence that follows one passage."""
        found = [w for w in words if w in piece.positions or w in question.positions]
        pairs = [(a, b) for a, b in zip(found, found[1:]) if a != b]
        if not pairs:
            return 1.0
        near = sum(1 for a, b in pairs if piece.near(a, b, self.reach) or question.near(a, b, self.reach))
        return near / len(pairs)

    def check_code(self, block: str, source: str) -> Verdict:
        """A code block: kept, with the library names it uses that the evidence lacks."""
        from studio_nb.services.evidence.loops import find_loop

        if find_loop(block, n=8, repeats=4) is not None:  # code repeats names by nature: be lenient
            return Verdict(block, False, "repeats itself", 0.0)
        names = []
        for m in _IMPORT.finditer(block):
            names += [m.group(1) or m.group(3)] + [n.strip() for n in (m.group(2) or "").split(",") if n.strip()]
        names += [m.group(1) for m in _CLASS_CALL.finditer(block)]
        missing = tuple(dict.fromkeys(n for n in names if not _found(n, source)))
        return Verdict(block, True, None, 1.0, unverified=missing)
