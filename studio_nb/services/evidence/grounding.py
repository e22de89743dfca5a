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
4. it is finished: when the model ran out of tokens, its last, cut-off sentence is dropped.

Chinese sentences need more of their terms supported (``min_support_cjk``): their terms
include character bigrams, and common bigrams are found in almost any evidence.

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
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:]\d+)*(?![\w])")
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


def _found(claim: str, haystack: str) -> bool:
    claim = folded(claim).strip("().,;:`'\" ")
    return not claim or claim in haystack or claim.replace("()", "") in haystack


class GroundingChecker:
    """``check(text, evidence, question)`` -> one Verdict per sentence (see module docstring)."""

    def __init__(self, min_support: float = 0.7, min_support_cjk: float = 0.8) -> None:
        self.min_support = min_support
        self.min_support_cjk = min_support_cjk

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
        known = set(terms("\n".join(evidence) + "\n" + question))
        asked = set(terms(question))
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
            verdict = self.check_sentence(sentence, source, known, allow_code=allow_code)
            own = set(terms(_CITE.sub("", sentence)))
            if verdict.kept and own and own <= asked:
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

    def check_sentence(self, sentence: str, source: str, known: set[str], *, allow_code: bool = False) -> Verdict:
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
        missing = [c for c in self.claims(bare) if not _found(c, source)]
        support = len(own & known) / len(own)
        if missing:
            return Verdict(sentence, False, f"states {missing[0]!r}, which is not in the sources", support)
        needed = self.min_support_cjk if cjk_share(bare) > 0.3 else self.min_support
        if support < needed:
            return Verdict(sentence, False, f"only {support:.0%} of its words are in the sources", support)
        return Verdict(sentence, True, None, support)

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
