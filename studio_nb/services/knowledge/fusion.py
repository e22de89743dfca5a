"""Fusing the dense and the lexical ranking into one.

Two ways, compared in ``bench/retrieval.py``: reciprocal rank fusion (only ranks matter,
robust to the two scores' different scales) and normalised score fusion (each list's
scores min-max scaled to 0..1, then a weighted sum: keeps "how much better" information).
The dense weight drops for mostly-Chinese queries, where the English-only embedding model
is close to noise; see ``dense_weight``.
"""

from __future__ import annotations

import re
from typing import Hashable, Sequence

from studio_nb.services.text import cjk_share


METHODS = ("rrf", "score")


def dense_weight(query: str, cjk_dense_weight: float) -> float:
    """Weight of the dense list relative to lexical (1.0): 1 for English, lower for CJK."""
    share = cjk_share(query)
    return 1.0 - share * (1.0 - cjk_dense_weight)


def fuse(
    dense: Sequence[tuple[Hashable, float]],
    lexical: Sequence[tuple[Hashable, float]],
    method: str = "rrf",
    w_dense: float = 1.0,
    w_lexical: float = 1.0,
    rrf_k: int = 60,
) -> list[tuple[Hashable, float]]:
    """``(key, fused score)`` best first, from two best-first ``(key, score)`` lists."""
    fused: dict[Hashable, float] = {}
    for items, w in ((dense, w_dense), (lexical, w_lexical)):
        if not items or w <= 0:
            continue
        if method == "rrf":
            for rank, (key, _) in enumerate(items):
                fused[key] = fused.get(key, 0.0) + w / (rrf_k + rank + 1)
        elif method == "score":
            hi, lo = items[0][1], min(s for _, s in items)
            span = hi - lo if hi > lo else 1.0
            for key, s in items:
                fused[key] = fused.get(key, 0.0) + w * (s - lo) / span
        else:
            raise ValueError(f"unknown fusion method {method!r}; use one of {METHODS}")
    return sorted(fused.items(), key=lambda kv: -kv[1])
