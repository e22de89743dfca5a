"""An in-memory BM25 (Okapi) index over pre-tokenised documents: the lexical index the
knowledge base rebuilt from the stored terms at every start and after every ingest,
until the persisted FTS5 index replaced it (studio_nb/services/knowledge/fulltext.py).

Kept for the benchmarks: ``lexical_engines.py`` measures it beside FTS5 and bm25s, and
``retrieval.py``'s naive baseline uses it.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable

import numpy as np


class BM25Index:
    """Okapi BM25 with the usual ``k1``/``b``; ``ids`` are the callers' document ids."""

    def __init__(self, docs: Iterable[tuple[int, list[str]]], k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        ids: list[int] = []
        lengths: list[int] = []
        postings: dict[str, tuple[list[int], list[int]]] = {}
        for row, (doc_id, tokens) in enumerate(docs):
            ids.append(doc_id)
            lengths.append(len(tokens))
            for term, tf in Counter(tokens).items():
                entry = postings.setdefault(term, ([], []))
                entry[0].append(row)
                entry[1].append(tf)
        self.ids = np.asarray(ids, dtype=np.int64)
        self._len = np.asarray(lengths, dtype=np.float32)
        avg = float(self._len.mean()) if len(ids) else 1.0
        self._norm = (k1 * (1 - b + b * self._len / max(avg, 1e-9))).astype(np.float32)
        n = len(ids)
        self._post = {
            t: (np.asarray(r, dtype=np.int32), np.asarray(f, dtype=np.float32), math.log(1 + (n - len(r) + 0.5) / (len(r) + 0.5)))
            for t, (r, f) in postings.items()
        }

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def nbytes(self) -> int:
        """Approximate memory of the postings and per-document arrays."""
        arrays = sum(r.nbytes + f.nbytes for r, f, _ in self._post.values())
        return arrays + self.ids.nbytes + self._len.nbytes + self._norm.nbytes + 120 * len(self._post)

    def df(self, term: str) -> int:
        """How many documents contain ``term``."""
        post = self._post.get(term)
        return 0 if post is None else len(post[0])

    def search(self, tokens: list[str], k: int, idf: dict[str, float] | None = None) -> list[tuple[int, float]]:
        """Top ``k`` ``(doc_id, score)`` for the query tokens, best first; zero scores dropped.

        ``idf`` overrides this index's own term weights: searching several domains with
        weights from their union makes their scores comparable (see ``union_idf``).
        """
        if not len(self.ids) or not tokens:
            return []
        scores = np.zeros(len(self.ids), dtype=np.float32)
        for term, qtf in Counter(tokens).items():
            post = self._post.get(term)
            if post is None:
                continue
            rows, tf, own_idf = post
            idf_t = own_idf if idf is None else idf.get(term, own_idf)
            scores[rows] += idf_t * qtf * tf * (self.k1 + 1) / (tf + self._norm[rows])
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(self.ids[i]), float(scores[i])) for i in top if scores[i] > 0]


def union_idf(indexes: list[BM25Index], tokens: list[str]) -> dict[str, float]:
    """BM25 term weights as if ``indexes`` were one collection."""
    n = sum(len(ix) for ix in indexes)
    out = {}
    for term in set(tokens):
        df = sum(ix.df(term) for ix in indexes)
        out[term] = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return out
