"""Choose the sentences, lines and code of the retrieved chunks that answer the question.

Retrieval returns whole sections (about 700 characters each, four or five of them); the
fact a user asked for is usually one sentence, one list item, one table row or a short
command in them. Measured on held-out questions, showing the best-matching sentences of
the retrieved chunks carried far more of the reference facts than the bundled model's
synthesis of the same chunks (bench/answers.py), in milliseconds and without inventing
anything. So this is the first part of every answer.

Each unit (see ``units.py``) is scored against the question:

- lexical: the share of the question's terms (IDF-weighted over the candidate units, so
  rare words count more) found in the unit, with the section heading counted at a
  lower weight; Chinese is segmented (jieba plus character bigrams) like the BM25 index;
- identifiers: a name from the question (``LocalEnvironment``, ``env.submit``) in the
  unit is strong evidence;
- meaning, optionally: cosine similarity of unit and question embeddings when an embedder
  is given (weighted down for Chinese questions: the default model is English-only). Off
  in the Studio pipeline: on the tune questions it lowered fact coverage from 0.74 to 0.69
  and cost ~40 sentence embeddings per question;
- answer-likeness: a question that asks for a value, a name or a command prefers units
  that contain one (digits, code, ``key: value``);
- the retrieval rank of the unit's chunk, a little.

Then units are picked greedily by score minus their overlap with what is already picked
(so five sentences do not say the same thing), within a character budget. A sentence
that introduces what follows ("Install it with:") brings the next unit along. Picked
units of one chunk that are neighbours are merged into one cited piece.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, replace
from typing import Any, Sequence

from studio_nb.services.evidence.units import Unit, split_units
from studio_nb.services.text import cjk_share, folded, identifiers, jaccard, terms

#: questions that ask for a number (a size, a port, a duration, a default value)
_WANTS_NUMBER = re.compile(
    r"\b(how (?:many|much|large|long|big|often)|port|default|size|limit|timeout|number|version|percent)\b|"
    r"多少|多大|多长|几个|端口|默认|大小|上限|时间|数量|版本|阈值",
    re.IGNORECASE,
)
#: questions that ask for a name: a command, a function, a package, a file, a setting
_WANTS_NAME = re.compile(
    r"\b(which|command|method|function|class|package|module|library|file|option|flag|key|"
    r"parameter|setting|call|install|run|import|name|api)\b|"
    r"哪个|哪些|哪种|命令|方法|函数|类名|包|模块|库|文件|选项|参数|配置项|调用|安装|运行|导入|名称|名字|接口",
    re.IGNORECASE,
)
#: questions that ask for an explanation: prose answers them better than code
_WANTS_EXPLANATION = re.compile(
    r"\b(what is|what are|what does|why|difference|differ|explain|purpose|mean)\b|"
    r"是什么|为什么|区别|不同|作用|含义|意思|解释|原理",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d")
_NAME_LIKE = re.compile(r"`|\w+[._]\w+|\w+\(\)|--?\w|[A-Z][a-z]+[A-Z]|^\s*(?:\$|sage|pip|python|\./|git|export)\b", re.M)
#: a line that imports or only comments: a code unit of nothing else explains nothing
_IMPORT_LINE = re.compile(r"\s*(?:from\s+[\w.]+\s+import\b|import\s+[\w.]|#|$)")
#: longest unit text shown; longer ones are cut to the window where the question matches
WINDOW = 240


@dataclass(frozen=True)
class Candidate:
    """A unit with where it came from and its score."""

    unit: Unit
    doc: int  # index of its document in the retrieved list
    index: int  # position of the unit within its document
    terms: frozenset[str]
    score: float = 0.0
    context: frozenset[str] = frozenset()  # terms of the unit's header row / lead-in


@dataclass(frozen=True)
class Selection:
    """The picked units of one document, merged into one citable piece."""

    doc: int
    units: tuple[Unit, ...]
    score: float

    @property
    def text(self) -> str:
        """The piece as shown: its units in document order; a table row under its header."""
        out = ""
        first = self.units[0]
        if first.context and "|" in first.context and first.context not in (u.text for u in self.units):
            out = first.context + "\n"
        for prev, unit in zip((None, *self.units[:-1]), self.units):
            sep = "" if prev is None else ("\n" if unit.kind != "sentence" or prev.kind != "sentence" else " ")
            out += sep + unit.text
        return out

    @property
    def start_line(self) -> int:
        return min(u.start_line for u in self.units)

    @property
    def end_line(self) -> int:
        return max(u.end_line for u in self.units)


class EvidenceSelector:
    """``select(question, documents)`` -> the best pieces, best first. See the module docstring.

    ``documents`` are objects with ``text``, ``path``, ``heading`` and ``start_line``
    (the pipeline's ``Source``). Weights are plain attributes so they can be tuned in a
    notebook cell and compared in ``bench/answers.py``.
    """

    def __init__(
        self,
        max_chars: int = 900,
        first_chars: int = 400,
        piece_chars: int = 200,
        max_pieces: int = 5,
        min_piece_chars: int = 80,
        min_relative_score: float = 0.2,
        redundancy: float = 0.5,
        heading_weight: float = 0.3,
        context_weight: float = 0.5,
        identifier_weight: float = 0.15,
        dense_weight: float = 0.25,
        answer_type_bonus: float = 0.25,
        rank_weight: float = 0.08,
        code_penalty: float = 0.5,
        import_penalty: float = 0.3,
        chunk_weight: float = 0.3,
        same_chunk_penalty: float = 0.5,
        restatement: float = 0.25,
        embedder: Any = None,
    ) -> None:
        self.max_chars = max_chars
        self.first_chars = first_chars
        self.piece_chars = piece_chars
        self.max_pieces = max_pieces
        self.min_piece_chars = min_piece_chars
        self.min_relative_score = min_relative_score
        self.redundancy = redundancy
        self.heading_weight = heading_weight
        self.context_weight = context_weight
        self.identifier_weight = identifier_weight
        self.dense_weight = dense_weight
        self.answer_type_bonus = answer_type_bonus
        self.rank_weight = rank_weight
        self.code_penalty = code_penalty
        self.import_penalty = import_penalty
        self.chunk_weight = chunk_weight
        self.same_chunk_penalty = same_chunk_penalty
        self.restatement = restatement
        self.embedder = embedder

    # ------------------------------------------------------------------ candidates
    def candidates(self, documents: Sequence[Any]) -> list[Candidate]:
        out = []
        for d, doc in enumerate(documents):
            code = str(getattr(doc, "path", "")).endswith((".py", ".ipynb"))
            for i, unit in enumerate(split_units(doc.text, getattr(doc, "start_line", 1) or 1, code=code)):
                if unit.kind == "code":  # indentation costs characters of the budget and says little
                    unit = replace(unit, text=textwrap.dedent(unit.text))
                out.append(Candidate(unit, d, i, frozenset(terms(unit.text)), context=frozenset(terms(unit.context))))
        return out

    def score(self, question: str, documents: Sequence[Any], cands: list[Candidate], query_vec: Any = None) -> list[Candidate]:
        q_terms = set(terms(question))
        if not cands:
            return []
        n = len(cands)
        df: dict[str, int] = {}
        for c in cands:
            for t in c.terms:
                df[t] = df.get(t, 0) + 1
        idf = {t: math.log(1 + n / (1 + df.get(t, 0))) for t in q_terms}
        total = sum(idf.values()) or 1.0
        head_terms = [set(terms(getattr(doc, "heading", "") or "")) for doc in documents]
        # how much of the question a whole chunk (with its heading) covers: a unit of a chunk
        # about the question is likelier to answer it than a lone unit that shares one rare word
        chunk_terms = [set().union(head_terms[d], *(c.terms for c in cands if c.doc == d)) for d in range(len(documents))]
        chunk_cover = [sum(idf[t] for t in q_terms & ct) / total for ct in chunk_terms]
        q_ids = {i.lower() for i in identifiers(question)}
        wants_number = bool(_WANTS_NUMBER.search(question))
        wants_name = bool(_WANTS_NAME.search(question))
        wants_prose = bool(_WANTS_EXPLANATION.search(question)) and not (wants_name or wants_number)
        dense = self._dense(question, cands, query_vec)
        dense_w = self.dense_weight * (1.0 - cjk_share(question))
        scored = []
        for k, c in enumerate(cands):
            text = c.unit.text
            hit = sum(idf[t] for t in q_terms & c.terms)
            ctx = sum(idf[t] for t in (q_terms & c.context) - c.terms)
            head = sum(idf[t] for t in (q_terms & head_terms[c.doc]) - c.terms - c.context)
            s = (hit + self.context_weight * ctx + self.heading_weight * head) / total
            if q_ids:
                low = text.lower()
                s += self.identifier_weight * sum(1 for i in q_ids if i in low) / len(q_ids)
            if dense is not None:
                s += dense_w * float(dense[k])
            if s <= 0:  # shares nothing with the question: no bonus makes it evidence
                scored.append(Candidate(c.unit, c.doc, c.index, c.terms, 0.0, c.context))
                continue
            if (wants_number and _NUMBER.search(text)) or (wants_name and _NAME_LIKE.search(text)):
                s += self.answer_type_bonus * min(s, 0.5) * 2  # only a unit on topic earns it
            s += self.rank_weight / (1 + c.doc)
            s += self.chunk_weight * chunk_cover[c.doc]
            if len(c.terms) < 3 and c.unit.kind != "code":
                s *= 0.6  # "options:", "members:", a lone name: markup, not a statement
            if len(text) < 12:
                s *= 0.5
            if wants_prose and c.unit.kind == "code":
                s *= self.code_penalty
            if _imports_only(c.unit):
                s *= self.import_penalty  # import lines name things; they never explain them
            if c.terms and len(c.terms - q_terms) < self.restatement * len(c.terms):
                s *= 0.6  # it only says the question back; the sentence with the answer says more
            scored.append(Candidate(c.unit, c.doc, c.index, c.terms, s, c.context))
        return scored

    def _dense(self, question: str, cands: list[Candidate], query_vec: Any):
        if self.embedder is None or self.dense_weight <= 0 or cjk_share(question) > 0.8:
            return None
        import numpy as np

        vecs = self.embedder.encode([c.unit.text for c in cands])
        q = query_vec if query_vec is not None else self.embedder.encode([question])[0]
        return np.clip(vecs @ np.asarray(q, dtype=np.float32), 0.0, 1.0)

    # ------------------------------------------------------------------ picking
    def select(self, question: str, documents: Sequence[Any], query_vec: Any = None) -> list[Selection]:
        """The best passages for ``question`` from ``documents``, best first (may be empty).

        A passage grows from its best unit (the anchor) through the units that follow it in
        the same chunk — the answer usually comes right after the sentence that matches the
        question ("autostop=True waits ..." then "at most 5 minutes, then ...") — and keeps
        what gives the anchor its meaning: the lead-in of a list item, the sentence that
        introduces a code block, the command after "with:". The first passage, from the best
        unit of all, gets the largest share of the budget (``first_chars``); the next ones,
        from other places, less (``piece_chars``), until ``max_chars`` or ``max_pieces``.
        """
        cands = self.score(question, documents, self.candidates(documents), query_vec)
        if not cands:
            return []
        best = max(c.score for c in cands)
        if best <= 0:
            return []
        q_terms = set(terms(question))
        by_doc: dict[int, list[Candidate]] = {}
        for c in cands:
            by_doc.setdefault(c.doc, []).append(c)
        taken: set[tuple[int, int]] = set()
        said: set[str] = set()  # a sentence copied into several files (or chunks) is shown once
        pieces: list[Selection] = []
        picked_terms: list[frozenset[str]] = []
        used = 0
        pool = sorted(cands, key=lambda c: -c.score)
        while pool and len(pieces) < self.max_pieces and self.max_chars - used >= self.min_piece_chars:
            def gain(c: Candidate) -> float:
                overlap = max((jaccard(c.terms, t) for t in picked_terms), default=0.0)
                again = self.same_chunk_penalty if any(p.doc == c.doc for p in pieces) else 0.0
                return c.score * (1.0 - self.redundancy * overlap) * (1.0 - again)

            anchor = max(pool, key=gain)
            pool.remove(anchor)
            if (anchor.doc, anchor.index) in taken or _said(anchor) in said:
                continue
            if gain(anchor) < self.min_relative_score * best:
                break
            budget = min(self.first_chars if not pieces else self.piece_chars, self.max_chars - used)
            units = self._grow(anchor, by_doc[anchor.doc], budget, q_terms, taken, said)
            if not units:
                continue
            for c in units:
                taken.add((c.doc, c.index))
                said.add(_said(c))
            piece = Selection(anchor.doc, tuple(c.unit for c in units), anchor.score)
            pieces.append(piece)
            picked_terms.append(frozenset().union(*(c.terms for c in units)))
            used += len(piece.text) + 5  # "[n] " and the line break the answer adds
        return pieces

    def _grow(
        self, anchor: Candidate, seq: list[Candidate], budget: int, q_terms: set[str],
        taken: set[tuple[int, int]], said: set[str],
    ) -> list[Candidate]:
        """The units of one passage around ``anchor`` within ``budget`` characters, in order."""
        pos = {c.index: k for k, c in enumerate(seq)}
        k0 = pos[anchor.index]

        def free(k: int) -> bool:
            return 0 <= k < len(seq) and (seq[k].doc, seq[k].index) not in taken and _said(seq[k]) not in said

        head = anchor if len(anchor.unit.text) <= budget else _window(anchor, q_terms, budget)
        if len(head.unit.text) > budget:
            head = _clip(head, budget)
        chosen = {k0: head}
        used = len(head.unit.text)

        def fits(k: int) -> bool:
            return used + len(seq[k].unit.text) + 1 <= budget

        # what the anchor needs to be understood: its lead-in, the sentence before a code block
        prev = k0 - 1
        if free(prev) and fits(prev) and (
            (anchor.unit.context and seq[prev].unit.text == anchor.unit.context)
            or (anchor.unit.kind == "code" and seq[prev].unit.kind != "code")
            or seq[prev].unit.lead_in
        ):
            chosen[prev] = seq[prev]
            used += len(seq[prev].unit.text) + 1
        # then what follows it, while it fits (a long next unit: its beginning); then what comes before
        lo = hi = k0
        lo = min(chosen)
        right_open = True
        while True:
            grown = False
            if right_open:
                nxt = hi + 1
                if not free(nxt):
                    right_open = False
                elif fits(nxt):
                    chosen[nxt], hi, grown = seq[nxt], nxt, True
                    used += len(seq[nxt].unit.text) + 1
                else:
                    room = budget - used - 1
                    if room >= 80:
                        cut = _clip(seq[nxt], room)
                        chosen[nxt], hi, grown = cut, nxt, True
                        used += len(cut.unit.text) + 1
                    right_open = False
            if not grown and not right_open:
                before = lo - 1
                if free(before) and fits(before) and not _imports_only(seq[before].unit):
                    chosen[before], lo, grown = seq[before], before, True
                    used += len(seq[before].unit.text) + 1
            if not grown:
                break
        return [chosen[k] for k in sorted(chosen)]


def _imports_only(unit: Unit) -> bool:
    """Code that only imports (or comments): it names things, it never explains them."""
    return unit.kind == "code" and all(_IMPORT_LINE.match(line) for line in unit.text.split("\n"))


def _said(c: Candidate) -> str:
    """What a unit says, ignoring case, spacing and the ellipses a window adds."""
    return folded(c.unit.text.replace("…", " "))


def _window(c: Candidate, q_terms: set[str], width: int = WINDOW) -> Candidate:
    """A long unit cut to the ``width`` characters around its densest match with the question."""
    text = c.unit.text
    if len(text) <= width:
        return c
    lines = text.split("\n")
    if c.unit.kind == "code" and len(lines) > 1:  # code: keep whole lines, the best ones
        scored = sorted(range(len(lines)), key=lambda i: -len(q_terms & set(terms(lines[i]))))
        keep, used = [], 0
        for i in scored:
            if used + len(lines[i]) > width and keep:
                break
            keep.append(i)
            used += len(lines[i]) + 1
        cut = "\n".join(lines[i] for i in sorted(keep))
    else:
        best, best_hits = 0, -1
        for start in range(0, len(text) - width + 1, max(width // 4, 1)):
            hits = len(q_terms & set(terms(text[start : start + width])))
            if hits > best_hits:
                best, best_hits = start, hits
        cut = ("…" if best else "") + text[best : best + width].strip() + ("…" if best + width < len(text) else "")
    unit = Unit(cut, c.unit.start_line, c.unit.end_line, c.unit.kind, c.unit.lead_in, c.unit.context)
    return Candidate(unit, c.doc, c.index, c.terms, c.score, c.context)


def _clip(c: Candidate, limit: int) -> Candidate:
    """The beginning of a unit that does not fit, cut after a word or a line, marked with "…"."""
    text = c.unit.text[: max(limit - 1, 1)]
    cut = max(text.rfind("\n"), text.rfind(" "), text.rfind("，"), text.rfind("、"))
    text = (text[:cut] if cut > limit // 2 else text).rstrip() + "…"
    unit = Unit(text, c.unit.start_line, c.unit.end_line, c.unit.kind, False, c.unit.context)
    return Candidate(unit, c.doc, c.index, c.terms, c.score, c.context)
