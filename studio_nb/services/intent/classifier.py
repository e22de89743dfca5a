"""IntentClassifier: keyword, embedding, llm or hybrid routing of one user message.

Hybrid is SAGE's own design: ``0.3 x keyword + 0.7 x embedding`` over per-intent
distributions. Both stages give a distribution that sums to 1 (keywords: smoothed
weight shares, uniform when nothing fired; embeddings: a softmax over prototype
similarity), so the fused scores are a distribution too and the winner's share is the
confidence. The fallback chain keeps routing alive when parts are missing: no embedding
model -> keywords alone; keyword and embedding disagree with low confidence and an llm
was given -> the llm breaks the tie between the two candidates.

The default embedding model is English-only: it embeds Chinese text, but poorly and
with misplaced confidence. So the embedding weight shrinks with the share of Chinese
characters in the message: ``w_emb = 0.7 x (1 - cjk_share x (1 - cjk_embedding_trust))``.
Trust 0.6 came from leave-one-out over the prototypes (zh accuracy 0.74 at trust 1.0,
0.92 at 0.6; en unaffected); pass ``cjk_embedding_trust=1.0`` with a multilingual model.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterable, Mapping

from studio_nb.errors import ConfigError, StudioError
from studio_nb.services.intent.domains import DomainRouter
from studio_nb.services.intent.embedding import PrototypeScorer
from studio_nb.services.intent.keywords import KeywordScorer
from studio_nb.services.text import cjk_share
from studio_nb.services.intent.llm import LLM_CONFIDENCE, LLMLabeler
from studio_nb.services.intent.prototypes import coerce_prototypes, load_prototypes
from studio_nb.services.intent.types import INTENTS, MODES, Intent, IntentResult

log = logging.getLogger(__name__)

MAX_SCORED_CHARS = 8000  # long pastes: the head carries the request, the rest only costs time
NO_EVIDENCE = Intent.GENERAL_CHAT  # nothing fired: answer directly rather than search blindly


def _rounded(scores: Mapping[Intent, float]) -> dict[str, float]:
    return {i.value: round(float(scores[i]), 4) for i in INTENTS}


def _argmax(scores: Mapping[Intent, float]) -> Intent:
    return max(INTENTS, key=lambda i: (scores[i], -INTENTS.index(i)))


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 3)


class IntentClassifier:
    """Classify a message into one of four intents and the knowledge domains to search.

    ``__init__`` is cheap; ``warm_up()`` loads the embedding model and embeds the
    prototypes once (``classify`` does it lazily if you forget). ``embedding_error``
    holds why the embedding stage is unavailable, if it is.
    """

    def __init__(
        self,
        mode: str = "hybrid",
        embedder=None,
        llm=None,
        domains: Mapping[str, Iterable[str]] | Iterable[str] | None = None,
        *,
        prototypes: str | Iterable | None = None,
        keyword_weight: float = 0.3,
        embedding_weight: float = 0.7,
        llm_threshold: float = 0.5,
        cjk_embedding_trust: float = 0.6,
        cache_dir: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"unknown intent mode {mode!r}; use one of: {', '.join(MODES)}")
        if mode == "llm" and llm is None:
            raise ConfigError("mode='llm' needs a chat client: IntentClassifier('llm', llm=create_inference_client())")
        if min(keyword_weight, embedding_weight) < 0 or keyword_weight + embedding_weight <= 0:
            raise ConfigError("keyword_weight and embedding_weight must be >= 0 and not both 0 (default 0.3 / 0.7)")
        if not 0.0 <= cjk_embedding_trust <= 1.0:
            raise ConfigError("cjk_embedding_trust must be in [0, 1] (1.0 for a multilingual embedding model)")
        total = keyword_weight + embedding_weight
        self.mode = mode
        self.keyword_weight = keyword_weight / total
        self.embedding_weight = embedding_weight / total
        self.llm_threshold = llm_threshold
        self.cjk_embedding_trust = cjk_embedding_trust
        self._embedder = embedder
        self._prototypes = prototypes
        self._cache_dir = cache_dir  # where the prototype embeddings are kept between runs
        self._keywords = KeywordScorer()
        self._router = DomainRouter(domains)
        self._labeler = LLMLabeler(llm) if llm is not None else None
        self._scorer: PrototypeScorer | None = None
        self._warmed = False
        self._lock = threading.Lock()
        self.embedding_error: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def warm_up(self) -> None:
        """Load what the mode needs (idempotent). In hybrid mode a broken embedding model
        is recorded in ``embedding_error`` and keywords carry on; in embedding mode it raises."""
        with self._lock:
            if self.mode in ("embedding", "hybrid") and (self._scorer is None or not self._scorer.ready):
                self._warm_embedding()
            if self._labeler is not None and self.mode == "llm":
                self._labeler.warm_up()
            self._warmed = True

    def _warm_embedding(self) -> None:
        protos = self._load_prototypes()  # a bad prototype file is a config error in every mode
        try:
            if self._embedder is None:
                from studio_nb.services.embeddings import Embedder

                self._embedder = Embedder()
            scorer = PrototypeScorer(self._embedder, protos, cache_dir=self._cache_dir)
            scorer.warm_up()
        except Exception as exc:
            if self.mode == "embedding":
                raise
            self.embedding_error = f"{type(exc).__name__}: {exc}"
            log.warning("intent: embedding stage unavailable, using keywords only (%s)", self.embedding_error)
            return
        self._scorer, self.embedding_error = scorer, None

    def _load_prototypes(self):
        src = self._prototypes
        if src is None or isinstance(src, str) or hasattr(src, "__fspath__"):
            return load_prototypes(src)
        return coerce_prototypes(src)

    @property
    def domains(self) -> tuple[str, ...]:
        return self._router.names

    def add_domain(self, name: str, keywords: Iterable[str] = (), *, private: bool = False) -> None:
        """Register a knowledge domain; messages naming it or its keywords are routed to it
        and count as (weak) evidence of a knowledge query. A ``private`` domain (one user's
        upload) is routed to but lends no intent evidence: its words must not change how
        another user's message is classified."""
        if isinstance(keywords, str):
            keywords = (keywords,)
        keywords = tuple(keywords)
        self._router.add(name, keywords)
        if not private:
            self._keywords.add_terms(Intent.KNOWLEDGE_QUERY, keywords, weight=1.0)

    def __repr__(self) -> str:
        state = "unavailable" if self.embedding_error else ("ready" if self._scorer else "cold")
        return (f"IntentClassifier(mode={self.mode!r}, weights=({self.keyword_weight:.2f}, "
                f"{self.embedding_weight:.2f}), embedding={state}, llm={self._labeler is not None}, "
                f"domains={list(self.domains)})")

    # ------------------------------------------------------------------ classify
    def classify(self, text: str, mode: str | None = None, *, hidden: Iterable[str] = ()) -> IntentResult:
        """The intent and domains of ``text``; ``mode`` overrides the classifier's own for
        this call (one session trying another mode shares the same model and domains).

        ``hidden`` names domains the asker may not see (other users' private ones): they
        are neither matched nor routed to, and appear nowhere in the result or its stages.
        """
        if not isinstance(text, str):
            raise StudioError(f"classify() takes the message as a str, got {type(text).__name__}", code="bad_input")
        mode = mode or self.mode
        if mode not in MODES:
            raise ConfigError(f"unknown intent mode {mode!r}; use one of: {', '.join(MODES)}")
        if mode == "llm" and self._labeler is None:
            raise ConfigError("intent mode 'llm' needs a chat client (configure intent_llm)")
        if not self._warmed:
            self.warm_up()
        if mode in ("embedding", "hybrid") and self._scorer is None and self.embedding_error is None:
            with self._lock:
                self._warm_embedding()  # this classifier's own mode did not need it
        if not text.strip():
            return IntentResult(NO_EVIDENCE, 0.0, (), (), mode, ({"stage": "input", "note": "empty message"},))
        scored = text[:MAX_SCORED_CHARS]
        trace: list[dict] = []
        if mode == "keyword":
            intent, conf, keywords = self._keyword_only(scored, trace)
        elif mode == "embedding":
            if self._scorer is None:
                raise StudioError(f"intent mode 'embedding' is unavailable: {self.embedding_error}",
                                  code="bad_config")
            emb = self._embedding_stage(scored, trace)
            intent, conf, keywords = emb.top, emb.scores[emb.top], ()
        elif mode == "llm":
            intent, conf, keywords = self._llm_only(scored, trace)
        else:
            intent, conf, keywords = self._hybrid(scored, trace)
        t0 = time.perf_counter()
        hidden = frozenset(hidden)
        matches = {d: hits for d, hits in self._router.matches(scored).items() if d not in hidden}
        domains = tuple(d for d in self._router.route(scored, intent, matches) if d not in hidden)
        trace.append({"stage": "domains", "matched": matches, "domains": list(domains), "ms": _ms(t0)})
        conf = min(1.0, max(0.0, float(conf)))
        return IntentResult(intent, round(conf, 4), domains, keywords, mode, tuple(trace))

    def _keyword_stage(self, text: str, trace: list[dict]):
        t0 = time.perf_counter()
        kw = self._keywords.score(text)
        trace.append({"stage": "keyword", "scores": _rounded(kw.scores), "raw": _rounded(kw.raw),
                      "matched": [f"{k}->{i.value}:{w:g}" for k, i, w in kw.matched], "ms": _ms(t0)})
        return kw

    def _embedding_stage(self, text: str, trace: list[dict]):
        t0 = time.perf_counter()
        emb = self._scorer.score(text)
        near_text, near_intent, near_sim = emb.nearest
        trace.append({"stage": "embedding", "scores": _rounded(emb.scores), "similarity": _rounded(emb.similarity),
                      "nearest": {"text": near_text, "intent": near_intent.value, "similarity": round(near_sim, 4)},
                      "ms": _ms(t0)})
        return emb

    def _llm_stage(self, text: str, trace: list[dict]):
        t0 = time.perf_counter()
        label = self._labeler.label(text)
        trace.append({"stage": "llm", "label": label.intent.value if label.intent else None, "raw": label.raw,
                      "ms": _ms(t0)})
        return label.intent

    @staticmethod
    def _keywords_of(kw) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k for k, _, _ in kw.matched))

    def _keyword_only(self, text: str, trace: list[dict]):
        kw = self._keyword_stage(text, trace)
        intent = kw.top if kw.any_hit else NO_EVIDENCE
        return intent, kw.scores[intent], self._keywords_of(kw)

    def _llm_only(self, text: str, trace: list[dict]):
        intent = self._llm_stage(text, trace)
        if intent is not None:
            return intent, LLM_CONFIDENCE, ()
        trace.append({"stage": "fallback", "reason": "llm answer was not a label; using keywords"})
        return self._keyword_only(text, trace)

    def _hybrid(self, text: str, trace: list[dict]):
        kw = self._keyword_stage(text, trace)
        keywords = self._keywords_of(kw)
        if self._scorer is None:
            fused, candidates = dict(kw.scores), {kw.top}
            intent = kw.top if kw.any_hit else NO_EVIDENCE
            trace.append({"stage": "fusion", "weights": {"keyword": 1.0, "embedding": 0.0},
                          "fallback": f"keyword only: embedding unavailable ({self.embedding_error})",
                          "scores": _rounded(fused)})
        else:
            emb = self._embedding_stage(text, trace)
            share = cjk_share(text)
            we = self.embedding_weight * (1.0 - share * (1.0 - self.cjk_embedding_trust))
            wk = 1.0 - we
            fused = {i: wk * kw.scores[i] + we * emb.scores[i] for i in INTENTS}
            intent, candidates = _argmax(fused), {kw.top, emb.top} if kw.any_hit else {emb.top}
            trace.append({"stage": "fusion", "weights": {"keyword": round(wk, 4), "embedding": round(we, 4)},
                          "cjk_share": round(share, 3),
                          "scores": _rounded(fused), "agree": len(candidates) == 1})
        if self._labeler is not None and fused[intent] < self.llm_threshold and (len(candidates) > 1 or self._scorer is None):
            choice = self._llm_stage(text, trace)
            if choice is not None and (choice in candidates or self._scorer is None):
                intent = choice
            trace[-1]["used"] = intent is choice
        return intent, fused[intent], keywords
