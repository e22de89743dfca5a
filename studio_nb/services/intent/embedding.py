"""Nearest-prototype scoring with sentence embeddings.

The prototype matrix is embedded once in ``warm_up``, so classifying costs one query
embedding plus a (n_prototypes x dim) matrix-vector product. With a ``cache_dir`` the
matrix is also kept on disk, keyed by the model and the prototype texts: embedding the
185 prototypes was the largest part of a server's warm-up after loading the model
(several seconds on 2 cores), and they only change when the model or the file does. Per intent we take the
mean of the top-k cosine similarities (robust to one odd prototype) and turn the four
numbers into a distribution with a temperature softmax: when the model cannot tell the
intents apart the similarities are close and the distribution comes out flat, which lets
the keyword stage decide. The temperature (0.1) was chosen by leave-one-out over the
prototypes (0.05 was over-confident on Chinese; 0.2 threw English signal away).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from studio_nb.services.intent.prototypes import Prototype
from studio_nb.services.intent.types import INTENTS, Intent


@dataclass(frozen=True)
class EmbeddingScores:
    scores: dict[Intent, float]  # softmax over intents, sums to 1
    similarity: dict[Intent, float]  # mean of the top-k cosine similarities per intent
    nearest: tuple[str, Intent, float]  # the closest prototype overall

    @property
    def top(self) -> Intent:
        return max(INTENTS, key=lambda i: (self.scores[i], -INTENTS.index(i)))


class PrototypeScorer:
    """Scores texts by similarity to labelled prototypes; ``warm_up`` embeds them once."""

    def __init__(
        self, embedder, prototypes: list[Prototype], *, top_k: int = 3, temperature: float = 0.1,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        self.embedder = embedder
        self.prototypes = list(prototypes)
        self.top_k = top_k
        self.temperature = temperature
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.loaded_from_cache = False
        self._matrix = None  # (n, dim) float32, unit rows
        self._masks = None  # intent -> index array

    @property
    def ready(self) -> bool:
        return self._matrix is not None

    def warm_up(self) -> None:
        """Load the embedder and embed the prototypes (idempotent; raises if the model fails)."""
        if self._matrix is not None:
            return
        import numpy as np

        self.embedder.warm_up()
        texts = [p.text for p in self.prototypes]
        matrix = self._cached(texts)
        if matrix is None:
            matrix = np.asarray(self.embedder.encode(texts), dtype=np.float32)
            self._store(texts, matrix)
        labels = np.array([INTENTS.index(p.intent) for p in self.prototypes])
        self._masks = {i: np.flatnonzero(labels == n) for n, i in enumerate(INTENTS)}
        self._matrix = matrix

    def _cache_file(self, texts: list[str]) -> Path | None:
        if self.cache_dir is None:
            return None
        # the model and its runtime (an int8 ONNX export's vectors differ from torch's)
        model = str(getattr(self.embedder, "fingerprint", None) or getattr(self.embedder, "model_path", None) or "default")
        key = hashlib.sha256(json.dumps([model, texts], ensure_ascii=False).encode()).hexdigest()[:16]
        return self.cache_dir / f"intent-prototypes-{key}.npy"

    def _cached(self, texts: list[str]):
        import numpy as np

        path = self._cache_file(texts)
        if path is None or not path.is_file():
            return None
        try:
            matrix = np.load(path, allow_pickle=False)
        except (OSError, ValueError):  # a torn or foreign file: embed again
            return None
        if matrix.shape[0] != len(texts):
            return None
        self.loaded_from_cache = True
        return matrix.astype(np.float32, copy=False)

    def _store(self, texts: list[str], matrix) -> None:
        import numpy as np

        path = self._cache_file(texts)
        if path is None:
            return
        try:
            from studio_nb.services import private_files

            private_files.make_dir(path.parent)  # in the data dir: owner-only, like the rest of it
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, matrix, allow_pickle=False)
            os.chmod(tmp, private_files.FILE_MODE)
            os.replace(tmp, path)  # readers see a whole file or none
        except OSError:  # a read-only data dir only costs the cache
            pass

    def add(self, prototypes: list[Prototype]) -> None:
        """Add prototypes; re-embeds lazily at the next warm_up."""
        self.prototypes.extend(prototypes)
        self._matrix = None

    def score(self, text: str) -> EmbeddingScores:
        import numpy as np

        self.warm_up()
        q = np.asarray(self.embedder.encode([text]), dtype=np.float32)[0]
        sims = self._matrix @ q
        per_intent = {}
        for intent in INTENTS:
            s = sims[self._masks[intent]]
            k = min(self.top_k, len(s))
            per_intent[intent] = float(np.mean(np.partition(s, -k)[-k:])) if k else -1.0
        logits = np.array([per_intent[i] for i in INTENTS]) / self.temperature
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        best = int(np.argmax(sims))
        p = self.prototypes[best]
        return EmbeddingScores(
            scores={i: float(probs[n]) for n, i in enumerate(INTENTS)},
            similarity=per_intent,
            nearest=(p.text, p.intent, float(sims[best])),
        )
