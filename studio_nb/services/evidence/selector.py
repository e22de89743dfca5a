"""Choose the sentences, lines and code of the retrieved chunks that answer the question.

Retrieval returns whole sections (about 600 characters each, ten of them); the
fact a user asked for is usually one sentence, one list item, one table row or a short
command in them. Measured on held-out questions, showing the best-matching sentences of
the retrieved chunks carried far more of the reference facts than the bundled model's
synthesis of the same chunks (bench/answers.py), in milliseconds and without inventing
anything. So this is the first part of every answer.

Each unit (see ``units.py``) is scored against the question:

- lexical: the share of the question's terms (IDF-weighted over the candidate units, so
  rare words count more, but a term every chunk holds keeps half the weight of the
  rarest: it is the topic retrieval found) found in the unit, with the headings above it
  counted at a lower weight; Chinese is segmented (jieba plus character bigrams) like the
  BM25 index; a word code abbreviates (``dim`` for "dimension", ``env`` for
  "environment") counts at ``abbreviation_weight``, and two words of the question that code
  writes as one ("times out": ``TimeoutError``; "FAISS index": ``FaissIndex``) are a term too;
- identifiers: a name from the question (``LocalEnvironment``, ``env.submit``) in the
  unit is strong evidence;
- meaning, optionally: cosine similarity of unit and question embeddings when an embedder
  is given (weighted down for Chinese questions: the default model is English-only). Off
  in the Studio pipeline: on the tune questions it lowered fact coverage from 0.74 to 0.69
  and cost ~40 sentence embeddings per question;
- answer-likeness: a question that asks for a value, a name or a command prefers units
  that contain one (digits, code, ``key: value``); one that asks which paper prefers a
  title (``《…》``, ``**标题**``, ``title={…}``), one that asks which exception an exception's
  name (``TimeoutError``), one that asks for a constant its definition (``EMBEDDING_PORT =``),
  by ``answer_name_boost``; one that asks what, why or how long
  prefers prose to code; import lines count only when it asks where a name comes from;
- the retrieval rank of the unit's chunk, a little.

Then units are taken best first, less their overlap with what is already taken (so five
sentences do not say the same thing), within one character budget, each with the lead-in
or introducing sentence it needs; a taken unit lifts the one after it (answers follow
the sentence that matches). The units of one chunk become one cited passage, in document
order, "…" where something was left out between them (``select``).
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, replace
from typing import Any, Sequence

from studio_nb.services.evidence.units import Unit, split_units
from studio_nb.services.text import cjk_share, folded, identifiers, jaccard, terms
from studio_nb.services.tokenizer import stem

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
#: questions that ask which paper, book or article: a title answers them
_WANTS_TITLE = re.compile(r"\b(which|what) (?:paper|article|book|publication)\b|\btitle\b|哪篇|哪本|出自|出处|标题|题目",
                          re.IGNORECASE)
_TITLE_LIKE = re.compile(r"《[^》]{4,}》|\*\*(?:标题|题目|title)\*\*|\btitle\s*=\s*[{\"]|[“\"][A-Z][a-z]+(?: [^”\"\n]+){2,}[”\"]",
                         re.IGNORECASE)
#: questions that ask what goes wrong: an exception's name answers them
_WANTS_ERROR = re.compile(r"\b(exceptions?|errors?|raise[sd]?|throws?)\b|异常|报错|错误|抛出", re.IGNORECASE)
_ERROR_LIKE = re.compile(r"\b[A-Z]\w+(?:Error|Exception)\b")  # TimeoutError, not the catch-all Exception
#: questions that ask for a constant: an UPPER_CASE name assigned in code answers them
_WANTS_CONSTANT = re.compile(r"\bconstants?\b|常量", re.IGNORECASE)
_CONSTANT_LIKE = re.compile(r"^\s*[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\s*[:=]", re.M)
#: questions that ask for an explanation: prose answers them better than code
_WANTS_EXPLANATION = re.compile(
    r"\b(what is|what are|what does|why|difference|differ|explain|purpose|mean)\b|"
    r"是什么|为什么|区别|不同|作用|含义|意思|解释|原理",
    re.IGNORECASE,
)
#: questions that ask how long: prose says a duration ("最长等待 5 分钟"), code rarely does
_WANTS_DURATION = re.compile(r"\bhow (?:long|often)\b|多久|多长时间", re.IGNORECASE)
#: questions that ask where a name comes from: import lines answer them
_WANTS_IMPORT = re.compile(r"\b(import|module|package)\b|导入|模块|包名|哪个包", re.IGNORECASE)
_NUMBER = re.compile(r"\d")
_NAME_LIKE = re.compile(r"`|\w+[._]\w+|\w+\(\)|--?\w|[A-Z][a-z]+[A-Z]|^\s*(?:\$|sage|pip|python|\./|git|export)\b", re.M)
#: a line that imports, comments or guards an import (try/except ImportError): a code unit of nothing else explains nothing
_IMPORT_LINE = re.compile(r"\s*(?:from\s+[\w.]+\s+import\b|import\s+[\w.]|#|$|try:|except\b.*:|else:|finally:|pass$)")
_IMPORTS = re.compile(r"(?:(?:from\s+[\w.]+\s+)?import\s+[\w.]+(?:\s+as\s+\w+)?(?:\s*,\s*[\w.]+(?:\s+as\s+\w+)?)*\s*)+")
_IMPORTED_NAMES = re.compile(r"(?<=import)\s*\([^()]*\)?\s*$", re.S)
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
    section: frozenset[str] = frozenset()  # terms of the heading above it inside its chunk


@dataclass(frozen=True)
class Selection:
    """The picked units of one document, merged into one citable piece."""

    doc: int
    units: tuple[Unit, ...]
    score: float
    #: each unit's position in its chunk: where two are not neighbours, "…" marks what was left out
    indices: tuple[int, ...] = ()

    @property
    def text(self) -> str:
        """The piece as shown: its units in document order; a table row under its header."""
        out = ""
        first = self.units[0]
        if first.context and "|" in first.context and first.context not in (u.text for u in self.units):
            out = first.context + "\n"
        indices = self.indices or tuple(range(len(self.units)))
        for k, unit in enumerate(self.units):
            text = unit.text
            depth = unit.indent - self._code_base(k) if unit.kind == "code" else 0
            if k:
                prev = self.units[k - 1]
                out += "\n" if unit.kind != "sentence" or prev.kind != "sentence" else " "
                if indices[k] > indices[k - 1] + 1 and not text.startswith("…"):
                    out += "…\n" if depth else "… "  # "…" above indented code, not inside its indentation
            if depth:  # the body of the line above keeps its depth
                text = textwrap.indent(text, " " * depth)
            out += text
        return out

    def _code_base(self, k: int) -> int:
        """The indentation the run of code units around unit ``k`` is shown at: its least."""
        start = k
        while start > 0 and self.units[start - 1].kind == "code":
            start -= 1
        end = k
        while end + 1 < len(self.units) and self.units[end + 1].kind == "code":
            end += 1
        return min(u.indent for u in self.units[start : end + 1])

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
        max_chars: int = 950,
        unit_chars: int = WINDOW,
        min_unit_chars: int = 40,
        follow: float = 0.3,
        min_relative_score: float = 0.2,
        redundancy: float = 0.5,
        heading_weight: float = 0.3,
        context_weight: float = 0.5,
        identifier_weight: float = 0.15,
        dense_weight: float = 0.25,
        answer_type_bonus: float = 0.25,
        rank_weight: float = 0.2,
        idf_floor: float = 0.5,
        code_penalty: float = 0.5,
        import_penalty: float = 0.3,
        chunk_weight: float = 0.3,
        restatement: float = 0.25,
        abbreviation_weight: float = 0.8,
        answer_name_boost: float = 2.0,
        embedder: Any = None,
    ) -> None:
        self.max_chars = max_chars
        self.unit_chars = unit_chars
        self.min_unit_chars = min_unit_chars
        self.follow = follow
        self.min_relative_score = min_relative_score
        self.redundancy = redundancy
        self.heading_weight = heading_weight
        self.context_weight = context_weight
        self.identifier_weight = identifier_weight
        self.dense_weight = dense_weight
        self.answer_type_bonus = answer_type_bonus
        self.rank_weight = rank_weight
        self.idf_floor = idf_floor
        self.code_penalty = code_penalty
        self.import_penalty = import_penalty
        self.chunk_weight = chunk_weight
        self.restatement = restatement
        self.abbreviation_weight = abbreviation_weight
        self.answer_name_boost = answer_name_boost
        self.embedder = embedder

    # ------------------------------------------------------------------ candidates
    def candidates(self, documents: Sequence[Any]) -> list[Candidate]:
        out = []
        for d, doc in enumerate(documents):
            code = str(getattr(doc, "path", "")).endswith((".py", ".ipynb"))
            for i, unit in enumerate(split_units(doc.text, getattr(doc, "start_line", 1) or 1, code=code)):
                if unit.kind == "code":  # indentation costs characters of the budget and says little
                    depth = min((len(line) - len(line.lstrip(" ")) for line in unit.text.split("\n") if line.strip()),
                                default=0)
                    unit = replace(unit, text=textwrap.dedent(unit.text), indent=depth)
                out.append(Candidate(unit, d, i, frozenset(terms(unit.text)), context=frozenset(terms(unit.context)),
                                     section=frozenset(terms(unit.section))))
        return out

    def score(self, question: str, documents: Sequence[Any], cands: list[Candidate], query_vec: Any = None) -> list[Candidate]:
        if not cands:
            return []
        q_terms = set(terms(question)) | _compounds(question, frozenset().union(*(c.terms for c in cands)))
        n = len(cands)
        df: dict[str, int] = {}
        for c in cands:
            for t in c.terms:
                df[t] = df.get(t, 0) + 1
        idf = {t: math.log(1 + n / (1 + df.get(t, 0))) for t in q_terms}
        if idf and self.idf_floor:  # a term every chunk has is the topic retrieval found, not noise
            top = max(idf.values())
            idf = {t: max(v, self.idf_floor * top) for t, v in idf.items()}
        total = sum(idf.values()) or 1.0
        head_terms = [set(terms(getattr(doc, "heading", "") or "")) for doc in documents]
        # how much of the question a whole chunk (with its heading) covers: a unit of a chunk
        # about the question is likelier to answer it than a lone unit that shares one rare word
        chunk_terms = [set().union(head_terms[d], *(c.terms for c in cands if c.doc == d)) for d in range(len(documents))]
        chunk_cover = [sum(idf[t] for t in q_terms & ct) / total for ct in chunk_terms]
        q_ids = {i.lower() for i in identifiers(question)}
        wants_number = bool(_WANTS_NUMBER.search(question))
        wants_name = bool(_WANTS_NAME.search(question))
        wants_title = bool(_WANTS_TITLE.search(question))
        wants_error = bool(_WANTS_ERROR.search(question))
        wants_constant = bool(_WANTS_CONSTANT.search(question))
        wants_prose = (bool(_WANTS_EXPLANATION.search(question)) and not (wants_name or wants_number)) or bool(
            _WANTS_DURATION.search(question))
        dense = self._dense(question, cands, query_vec)
        dense_w = self.dense_weight * (1.0 - cjk_share(question))
        scored = []
        for k, c in enumerate(cands):
            text = c.unit.text
            hit = sum(idf[t] for t in q_terms & c.terms)
            if self.abbreviation_weight:
                hit += self.abbreviation_weight * sum(idf[t] for t in _abbreviated(q_terms - c.terms, c.terms))
            ctx = sum(idf[t] for t in (q_terms & c.context) - c.terms)
            head = sum(idf[t] for t in (q_terms & (head_terms[c.doc] | c.section)) - c.terms - c.context)
            s = (hit + self.context_weight * ctx + self.heading_weight * head) / total
            if q_ids:
                low = text.lower()
                s += self.identifier_weight * sum(1 for i in q_ids if i in low) / len(q_ids)
            if dense is not None:
                s += dense_w * float(dense[k])
            if s <= 0:  # shares nothing with the question: no bonus makes it evidence
                scored.append(replace(c, score=0.0))
                continue
            if (wants_number and _NUMBER.search(text)) or (wants_name and _NAME_LIKE.search(text)):
                s += self.answer_type_bonus * min(s, 0.5) * 2  # only a unit on topic earns it
            s += self.rank_weight / (1 + c.doc)
            s += self.chunk_weight * chunk_cover[c.doc]
            if ((wants_title and _TITLE_LIKE.search(text)) or (wants_error and _ERROR_LIKE.search(text))
                    or (wants_constant and _CONSTANT_LIKE.search(text))):
                # "which paper?": a title (《…》, **标题**, title={…}) is the answer, not a restatement;
                # "which exceptions?": the unit that names one (TimeoutError), even in Chinese;
                # "which constant?": the line that defines one (EMBEDDING_PORT = ...)
                s *= self.answer_name_boost
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
            scored.append(replace(c, score=s))
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

        Units are taken best first (their score less their overlap with what is already
        taken, so five sentences do not say the same thing) until ``max_chars`` is spent,
        each with what gives it its meaning: the lead-in of a list item, the sentence that
        introduces a code block, the command after "with:". Taking a unit raises the score
        of the unit that follows it by ``follow`` × its own: the answer often comes right
        after the sentence that matches the question ("autostop=True waits ..." then "at
        most 5 minutes, then ...") while sharing none of its words. Then the units taken
        from one chunk become one cited passage, in the order of the document — the
        passages ordered by their best unit.

        Measured on the question sets of ``bench/evidence_select.py`` (evidence coverage
        over the top-5 chunks'), this beat growing one passage around each best match
        (0.70 → 0.80 on foreign_dev in both languages, 0.83/0.86 → 0.92/0.95 on the HanLP
        docs): the budget goes to the units that answer, wherever they are in the chunk.
        """
        cands = self.score(question, documents, self.candidates(documents), query_vec)
        best = max((c.score for c in cands), default=0.0)
        if best <= 0:
            return []
        floor = self.min_relative_score * best
        q_terms = set(terms(question))
        by_doc: dict[int, list[Candidate]] = {}
        for c in cands:
            by_doc.setdefault(c.doc, []).append(c)
        position = {(c.doc, c.index): k for seq in by_doc.values() for k, c in enumerate(seq)}
        score = {(c.doc, c.index): c.score for c in cands}
        taken: dict[tuple[int, int], Candidate] = {}
        said: set[str] = set()  # a sentence copied into several files (or chunks) is shown once
        taken_terms: list[frozenset[str]] = []
        used = 0

        def take(c: Candidate) -> bool:
            """Add ``c`` (cut to its best window when long) if it fits; False when it does not."""
            nonlocal used
            key = (c.doc, c.index)
            if key in taken or _said(c) in said:
                return True
            shown = c if len(c.unit.text) <= self.unit_chars else _window(c, q_terms, self.unit_chars)
            cost = len(shown.unit.text) + 1 + (0 if any(d == c.doc for d, _ in taken) else 5)  # "[n] " per passage
            if used + cost > self.max_chars:
                return False
            taken[key], used = shown, used + cost
            said.add(_said(c))
            taken_terms.append(c.terms)
            return True

        def gain(c: Candidate) -> float:
            overlap = max((jaccard(c.terms, t) for t in taken_terms), default=0.0)
            return score[(c.doc, c.index)] * (1.0 - self.redundancy * overlap)

        # import lines name things and explain nothing: shown only when the question asks where from
        imports_wanted = bool(_WANTS_IMPORT.search(question))
        # a table's header row alone says nothing; it is shown above any row of it that is taken
        headers = {(c.doc, c.unit.context) for c in cands if " | " in c.unit.context}

        def shown_alone(c: Candidate) -> bool:
            """Whether ``c`` may be evidence by itself (not a bare import, not a lone header row)."""
            return (imports_wanted or not _imports_only(c.unit)) and (c.doc, c.unit.text) not in headers

        pool = [c for c in cands if c.score >= floor and shown_alone(c)]
        while pool and self.max_chars - used >= self.min_unit_chars:
            c = max(pool, key=gain)
            pool.remove(c)
            if gain(c) < floor:
                break
            seq, k = by_doc[c.doc], position[(c.doc, c.index)]
            before = seq[k - 1] if k > 0 else None
            if before is not None and not _imports_only(before.unit) and (
                (c.unit.context and before.unit.text == c.unit.context)
                or (c.unit.kind == "code" and before.unit.kind != "code")
                or before.unit.lead_in
            ):
                take(before)  # what the unit needs to be understood, if it fits
            if not take(c):
                continue
            after = seq[k + 1] if k + 1 < len(seq) else None
            if after is None or (after.doc, after.index) in taken:
                continue
            if c.unit.lead_in:
                take(after)  # "Install it with:" is nothing without the command
            elif not (c.unit.kind == "code" and after.unit.kind == "code" and after.unit.start_line > c.unit.end_line + 1):
                # (the next code block after a gap is another example, not the rest of this one)
                score[(after.doc, after.index)] += self.follow * c.score
                if after not in pool and shown_alone(after):
                    pool.append(after)
        per_doc: dict[int, list[tuple[int, int]]] = {}
        for key in sorted(taken):
            per_doc.setdefault(key[0], []).append(key)
        pieces = [
            Selection(d, tuple(taken[key].unit for key in keys), max(score[key] for key in keys),
                      tuple(i for _, i in keys))
            for d, keys in per_doc.items()
        ]
        return sorted(pieces, key=lambda p: -p.score)


_LATIN_WORD = re.compile(r"[A-Za-z]+")


def _compounds(question: str, vocabulary: frozenset[str]) -> set[str]:
    """Two words of the question that code writes as one ("times out" -> ``timeout``,
    "set up" -> ``setup``, "shut down" -> ``shutdown``), where the units have that word."""
    words = [w.lower() for w in _LATIN_WORD.findall(question)]
    out = set()
    for a, b in zip(words, words[1:]):
        for joined in {a + b, stem(a) + b}:
            if len(joined) >= 5 and joined in vocabulary:
                out.add(joined)
    return out


def _abbreviated(wanted: set[str], have: frozenset[str]) -> set[str]:
    """The words of ``wanted`` that ``have`` holds abbreviated: code shortens words (``dim``
    for "dimension", ``env`` for "environment", ``config`` for "configure"). An abbreviation
    is a Latin word of 3+ letters that begins a wanted word 2+ letters longer."""
    short = [t for t in have if len(t) >= 3 and t.isascii() and t.isalpha()]
    return {w for w in wanted if w.isascii() and any(len(w) >= len(t) + 2 and w.startswith(t) for t in short)}


def _imports_only(unit: Unit) -> bool:
    """Code that only imports (or comments): it names things, it never explains them. Also
    import lines outside a fence, which a paragraph may have joined into one "sentence"."""
    if unit.kind != "code":
        return bool(_IMPORTS.fullmatch(unit.text.strip()))
    text = _IMPORTED_NAMES.sub(" x", unit.text)  # "import (\n    A,\n    B,\n)" is one import line
    return all(_IMPORT_LINE.match(line) for line in text.split("\n"))


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
    unit = replace(c.unit, text=cut)
    return replace(c, unit=unit)
