"""Is each generated sentence supported by the evidence? Keep it, or drop it and say why.

A small model asked to answer from a few passages will still invent: a port number that
is not in them, a method name that sounds right, a cheerful sentence about itself, or a
sentence whose every word is in the evidence but whose claim is not ("Sage runs the task
status in the JobManager after 5 minutes", put together from three passages). A sentence
of the synthesis is kept only when it restates one span of one passage (with the question
for its framing): a careful reader would point at that span and say "it says this". Lexically
(``span.py``): the sentence's content words, in order, align to one stretch of one piece of
evidence, and

1. its *claims* are in that stretch: numbers with their units, code names
   (``env.submit()``, ``max_tokens``, ``LocalEnvironment``), paths and ``quoted`` code must
   be found verbatim in the piece (or the question), and their words must be part of the
   aligned chain — a port of the table's next row, or a name from another passage, is not
   the one the sentence talks about;
2. almost all its other content words are in the chain too: at most ``max_unsupported`` of
   them may be neither aligned nor framing — a word of the question frames the sentence where
   the piece lacks it or has it earlier in the sentence (or line) the span starts in; "Q2" of a
   list on another line is not the subject of the "145.2" below it;
3. where the sentence says one thing and the passage another at the same place (between two
   aligned words, or right after the last one while the passage's sentence goes on), it
   changed the claim: "…environment setup, and time" for "…environment setup, and best
   practices" is dropped;
4. it agrees with the span on negation and on qualifiers: a "not", "never", "only" or
   "must" the sentence adds, or a "not" inside the span the sentence leaves out, turns the
   claim around;
5. it says something the question does not: at least ``min_new`` aligned words (a Chinese
   character counts half) that are not the question's, or a number;
6. it is finished: a last sentence cut off by the token limit, or one that ends on "the",
   "which", "is", "的"…, is dropped; it does not loop, repeat an earlier sentence, only
   restate the question, or only paste the evidence back (that one silently: it is shown
   already); a sentence with no content word ("Sure!") is filler, removed silently;
7. it is in the language of the question (names and code aside; a sentence that is only
   names and code has no language to disagree with).

A generated code block is kept when code was asked for (``allow_code``; its local names
are the model's to choose), but the library names it imports or instantiates are checked
like claims, and those not found in the evidence are reported in ``Verdict.unverified`` so
the user sees which parts of the code the sources do not back. An unterminated block (the
model ran out of tokens inside it) is dropped, and so is code in an answer to a question
that did not ask for any.

Citations like ``[2]`` are checked too: a number that names no piece of evidence is
removed from the sentence. The checker is deliberately lexical and strict: it cannot
tell a faithful paraphrase in other words from an invention, so it prefers to drop
(``bench/grounding.py`` measures both sides on labelled sentences).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

from studio_nb.services.evidence.span import NEGATION, QUALIFIERS, Passage, is_cjk, is_number, span_tokens
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
#: a sentence that stops on one of these was cut off: what it was about to say is missing
_DANGLING = re.compile(r"\b(?:a|an|the|of|to|in|on|at|by|for|and|or|is|are|was|be|which|that|with|from|as|its|their|"
                       r"when|while|whose)$|[的和与或在是将把被，、（(]$", re.IGNORECASE)
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
    support: float = 1.0  # share of its content words the closest piece (with the question) supports
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
    (names and code aside): the asker reads one language, and the check reads it too. A sentence
    that is only names and code (``class HelloWorldJoin(BaseJoinFunction):``) is in neither."""
    bare = _QUOTED.sub(" ", _CITE.sub("", sentence))
    bare = re.sub(r"[A-Za-z_][\w.]*[._(][\w.()]*|[A-Z][a-z]+[A-Z]\w*|\"[^\"]*\"|'[^']*'", " ", bare)  # names, strings
    if cjk_share(bare) == 0 and len(re.findall(r"[A-Za-z]{2,}", bare)) < 3:
        return False
    return (cjk_share(bare) > 0.3) != (cjk_share(question) > 0.3)


def _found(claim: str, haystack: str) -> bool:
    claim = folded(claim).strip("().,;:`'\" ")
    return not claim or claim in haystack or claim.replace("()", "") in haystack


class _Piece:
    """One evidence piece (or the question), prepared once per check: folded text and its tokens."""

    def __init__(self, text: str) -> None:
        self.source = folded(text)
        self.passage = Passage(text)


class GroundingChecker:
    """``check(text, evidence, question)`` -> one Verdict per sentence (see module docstring)."""

    def __init__(self, max_unsupported: float = 0.15, min_new: float = 2.0, reach: int = 4,
                 restate: float = 0.15) -> None:
        self.max_unsupported = max_unsupported  # share of content words neither aligned nor the question's
        self.min_new = min_new  # aligned words the question does not have (a Chinese character counts half)
        self.reach = reach  # how far apart two consecutive words of a restatement may stand in the passage
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
        """The verdict on one sentence: a restatement of one span of one piece (with the question), or not."""
        from studio_nb.services.evidence.loops import find_loop

        if sentence.startswith("```"):
            if not sentence.rstrip().endswith("```") or sentence.rstrip() == "```":
                return Verdict(sentence, False, "an unfinished code block", 0.0)
            if allow_code:
                return self.check_code(sentence, source)
        bare = _CITE.sub("", sentence)
        own = set(terms(bare))
        words = span_tokens(bare)
        if not own or own <= _FILLER or not words:
            return Verdict(sentence, False, "says nothing", 0.0, filler=True)
        if find_loop(bare) is not None:
            return Verdict(sentence, False, "repeats itself", 0.0)
        if _DANGLING.search(bare.rstrip()):
            return Verdict(sentence, False, "cut off mid-sentence", 0.0)
        claims = self.claims(bare)
        weights = [0.5 if w in question.passage.positions else 1.0 for w in words]  # what the answer adds counts more
        best: tuple[float, float, str] = (float("-inf"), 0.0, "")
        for piece in pieces:
            chain = piece.passage.align(words, self.reach, keep_numbers=any(is_number(c) for c in claims),
                                        weights=weights)
            why, support = self._judge(words, claims, chain, piece, question)
            if why is None:
                return Verdict(sentence, True, None, support)
            score = support - why.startswith("states")  # the closest piece explains the drop best
            if score > best[0]:
                best = (score, support, why)
        return Verdict(sentence, False, best[2], best[1])

    def _judge(self, words: list[str], claims: list[str], chain: list[tuple[int, int]], piece: _Piece,
               question: _Piece) -> tuple[str | None, float]:
        """Why the aligned ``chain`` does not make ``words`` a restatement of ``piece`` (None: it does),
        and the share of the sentence's words it supports."""
        aligned = {i for i, _ in chain}
        said = {words[i] for i in aligned}
        asked = {i for i, w in enumerate(words) if w in question.passage.positions}
        # the question's words may frame the sentence; where the piece has them too, they must stand in the
        # sentence of the passage the span starts in ("Q2" of another line is not the subject of its "145.2")
        start = min((p for _, p in chain), default=0)
        framing = {i for i in asked - aligned
                   if words[i] not in piece.passage.positions or piece.passage.leads_to(words[i], start)}
        unsupported = [w for i, w in enumerate(words) if i not in aligned and i not in framing]
        support = 1 - len(unsupported) / len(words)
        for claim in claims:
            if _found(claim, question.source):
                continue
            if not _found(claim, piece.source) or not set(span_tokens(claim)) <= said:
                return f"states {claim!r}, which no source says of this", support
        for w in words:
            if w in NEGATION | QUALIFIERS and w not in said:
                return f"adds {w!r}, which its source does not say", support
        if len(unsupported) > self.max_unsupported * len(words):
            return f"only {support:.0%} of its words are in one source, in its order", support
        new = [words[i] for i in aligned - asked]
        if sum(0.5 if is_cjk(w) else 1 for w in new) < self.min_new and not any(map(is_number, new)):
            return "only restates the question", support
        tokens = piece.passage.tokens
        for (i, p), (j, q) in zip(chain, chain[1:]):
            here, there = words[i + 1 : j], tokens[p + 1 : q] if q > p else []
            if set(here) - set(there) and set(there) - set(here):
                return f"says {' '.join(here)!r} where its source says {' '.join(there)!r}", support
        if not chain:
            return None, support
        last, end = chain[-1]
        tail = words[last + 1 :]
        if tail and end not in piece.passage.ends and end + 1 < len(tokens) and tokens[end + 1] not in tail:
            return f"ends with {' '.join(tail)!r} where its source goes on with {tokens[end + 1]!r}", support
        for w in tokens[min(p for _, p in chain) : max(p for _, p in chain) + 1]:
            if w in NEGATION and w not in said:
                return f"leaves out its source's {w!r}", support
        return None, support

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
