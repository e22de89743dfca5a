"""KnowledgeManager: the knowledge service's one public entry point.

It owns the domains under ``data_dir/knowledge/``, ingests files into them and answers
searches with dense (hnswlib), lexical (BM25) or hybrid (fused) retrieval. ``__init__``
only records settings; ``warm_up`` loads indexes, the embedding model and jieba (and runs
lazily on first use). Searches may run from many threads at once; ``asearch`` searches
the domains concurrently in worker threads.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Iterable

from studio_nb.errors import ConfigError
from studio_nb.services.knowledge import lexical_tokens
from studio_nb.services.knowledge.bm25 import union_idf
from studio_nb.services.knowledge.domain import STORE_FILE, Domain
from studio_nb.services.knowledge.fusion import METHODS, dense_weight, fuse
from studio_nb.services.knowledge.ingest import ingest_path
from studio_nb.services.knowledge.split_text import SplitConfig
from studio_nb.services.knowledge.types import DomainInfo, IngestReport, SearchHit

MODES = ("hybrid", "dense", "lexical")
STANDARD_DOMAINS = ("sage_docs", "examples", "research_guidance", "user_uploads")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
#: capitalised words that are not at a sentence start ("... the Gateway ..."), and acronyms
_CAPITALISED = re.compile(r"(?<=[a-z,;:]\s)[A-Z][a-zA-Z]{2,}|\b[A-Z]{3,}\b")


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or name in {".", ".."}:
        raise ConfigError(
            f"bad knowledge domain name {name!r}; fix: use 1-64 letters, digits, '_', '-' or '.', "
            f"e.g. one of {', '.join(STANDARD_DOMAINS)}"
        )
    return name


class KnowledgeManager:
    """Domains of chunked, embedded documents, searched densely, lexically or both.

    ``fusion`` is ``"rrf"`` or ``"score"``; ``candidates`` is how many hits each retriever
    contributes per domain before fusion; ``cjk_dense_weight`` is the dense list's weight
    for an all-Chinese query (the default English-only model is weak there).
    """

    def __init__(
        self,
        data_dir: str | Path,
        embedder=None,
        *,
        split: SplitConfig | None = None,
        fusion: str = "rrf",
        candidates: int = 50,
        cjk_dense_weight: float = 0.5,
        batch_size: int = 32,
    ) -> None:
        if fusion not in METHODS:
            raise ConfigError(f"unknown fusion {fusion!r}; fix: use one of {METHODS}")
        self.data_dir = Path(data_dir).expanduser()
        self.root = self.data_dir / "knowledge"
        self.split = split or SplitConfig()
        self.fusion, self.candidates = fusion, candidates
        self.cjk_dense_weight, self.batch_size = cjk_dense_weight, batch_size
        self._embedder = embedder
        self._domains: dict[str, Domain] = {}
        self._lock = threading.RLock()
        self._warm = False

    def __repr__(self) -> str:
        state = f"domains={sorted(self._domains)}" if self._warm else "not warmed up"
        return f"KnowledgeManager({str(self.data_dir)!r}, fusion={self.fusion!r}, {state})"

    # -- lifecycle --------------------------------------------------------------------
    @property
    def embedder(self):
        if self._embedder is None:
            from studio_nb.services.embeddings import Embedder

            self._embedder = Embedder()
        return self._embedder

    def warm_up(self) -> None:
        """Load every domain's indexes, the embedding model and jieba (idempotent)."""
        if self._warm:
            return
        with self._lock:
            if self._warm:
                return
            self.root.mkdir(parents=True, exist_ok=True)
            for sub in sorted(self.root.iterdir()):
                if sub.name not in self._domains and (sub / STORE_FILE).exists() and _NAME.match(sub.name):
                    self._domains[sub.name] = Domain.open(sub.name, sub)
            warm = getattr(self.embedder, "warm_up", None)
            if warm:
                warm()
            lexical_tokens.warm_up()
            self._warm = True

    def close(self) -> None:
        """Release SQLite connections and indexes; a later call warms up again."""
        with self._lock:
            for dom in self._domains.values():
                dom.close()
            self._domains.clear()
            self._warm = False

    def __enter__(self) -> "KnowledgeManager":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- domains ----------------------------------------------------------------------
    def domains(self) -> list[DomainInfo]:
        self.warm_up()
        with self._lock:
            doms = list(self._domains.values())
        return [d.info() for d in sorted(doms, key=lambda d: d.name)]

    def remove_domain(self, name: str) -> bool:
        """Delete a domain and its files; False when there was no such domain."""
        _check_name(name)
        self.warm_up()
        with self._lock:
            dom = self._domains.pop(name, None)
        if dom is None:
            return False
        dom.destroy()
        return True

    def _domain_for_write(self, name: str) -> Domain:
        with self._lock:
            dom = self._domains.get(name)
            if dom is None:
                model = getattr(self.embedder, "model_path", None) or f"{type(self.embedder).__name__}(default)"
                dom = Domain.open(name, self.root / name, dim=int(self.embedder.dim), model=str(model))
                self._domains[name] = dom
            elif dom.dim != int(self.embedder.dim):
                raise ConfigError(
                    f"knowledge domain {name!r} holds {dom.dim}-d vectors but the embedder makes "
                    f"{self.embedder.dim}-d ones; fix: use the model it was built with or remove_domain({name!r})"
                )
            return dom

    # -- ingest -----------------------------------------------------------------------
    def ingest(self, path: str | Path, domain: str, progress: bool = True) -> IngestReport:
        """Index a file or folder into ``domain`` (created on first use), incrementally."""
        _check_name(domain)
        self.warm_up()
        return ingest_path(self._domain_for_write(domain), Path(path), self.embedder, self.split,
                           progress=progress, batch_size=self.batch_size)

    # -- search -----------------------------------------------------------------------
    def mentions(self, text: str, domains: Iterable[str] | None = None, max_share: float = 0.2) -> list[str]:
        """Names in ``text`` that the indexed documents use, e.g. ``JobManager`` in "hey, what
        does the JobManager do?": identifiers (CamelCase, snake_case, dotted) and capitalised
        words found in some domain's lexical index, and not in more than ``max_share`` of its
        chunks (a name every chunk uses says nothing). The router's guess that a message is
        chit-chat is overruled when it names one of these (DESIGN §1: the evidence decides).
        """
        from studio_nb.services.text import identifiers

        self.warm_up()
        candidates = set(identifiers(text)) | set(_CAPITALISED.findall(text))
        if not candidates:
            return []
        with self._lock:
            doms = [d for n, d in self._domains.items() if domains is None or n in set(domains)]
        found = []
        for name in sorted(candidates):
            token = name.lower().replace("()", "")
            if any(0 < d.bm25.df(token) <= max_share * max(len(d.bm25), 1) for d in doms):
                found.append(name)
        return found

    def _plan(self, query: str, domains: Iterable[str] | None, k: int, mode: str):
        if mode not in MODES:
            raise ConfigError(f"unknown search mode {mode!r}; fix: use one of {MODES}")
        if not isinstance(query, str):
            raise ConfigError(f"search query must be a string, not {type(query).__name__}")
        if not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, not {k!r}")
        if isinstance(domains, str):
            domains = [domains]
        names = [_check_name(d) for d in domains] if domains is not None else None
        self.warm_up()
        with self._lock:
            # a named domain nobody ingested yet simply contributes nothing
            targets = [d for n, d in sorted(self._domains.items()) if names is None or n in names]
        return targets, max(self.candidates, k)

    def _query_inputs(self, query: str, mode: str, targets: list[Domain]):
        vec = self.embedder.encode([query])[0] if mode != "lexical" else None
        tokens = idf = None
        if mode != "dense":
            tokens = lexical_tokens.tokenize(query)
            idf = union_idf([d.bm25 for d in targets], tokens) if len(targets) > 1 else None
        return vec, tokens, idf

    @staticmethod
    def _collect(dom: Domain, vec, tokens, idf, n: int):
        dense = [((dom.name, i), s) for i, s in dom.dense(vec, n)] if vec is not None else []
        lexical = [((dom.name, i), s) for i, s in dom.lexical(tokens, n, idf)] if tokens is not None else []
        return dense, lexical

    def _finish(self, query: str, targets: list[Domain], parts, k: int, mode: str) -> list[SearchHit]:
        dense = sorted((x for d, _ in parts for x in d), key=lambda kv: -kv[1])
        lexical = sorted((x for _, lx in parts for x in lx), key=lambda kv: -kv[1])
        if mode == "dense":
            ranked = dense[:k]
        elif mode == "lexical":
            ranked = lexical[:k]
        else:
            ranked = fuse(dense, lexical, self.fusion, w_dense=dense_weight(query, self.cjk_dense_weight))[:k]
        dense_s, lex_s = dict(dense), dict(lexical)
        by_domain = {d.name: d for d in targets}
        chunks = {}
        for name in {key[0] for key, _ in ranked}:
            ids = [key[1] for key, _ in ranked if key[0] == name]
            chunks.update({(name, i): c for i, c in by_domain[name].chunks(ids).items()})
        return [
            SearchHit(chunks[key], float(score), dense_s.get(key), lex_s.get(key))
            for key, score in ranked
            if key in chunks  # a chunk replaced by a concurrent ingest is simply left out
        ]

    def search(self, query: str, domains: Iterable[str] | None = None, k: int = 5, mode: str = "hybrid") -> list[SearchHit]:
        """The ``k`` best chunks for ``query`` across ``domains`` (None = all), best first."""
        targets, n = self._plan(query, domains, k, mode)
        if not targets or not query.strip():
            return []
        vec, tokens, idf = self._query_inputs(query, mode, targets)
        parts = [self._collect(d, vec, tokens, idf, n) for d in targets]
        return self._finish(query, targets, parts, k, mode)

    async def asearch(
        self, query: str, domains: Iterable[str] | None = None, k: int = 5, mode: str = "hybrid"
    ) -> list[SearchHit]:
        """``search`` without blocking the event loop; domains are searched concurrently."""
        import anyio

        targets, n = await anyio.to_thread.run_sync(self._plan, query, domains, k, mode)
        if not targets or not query.strip():
            return []
        vec, tokens, idf = await anyio.to_thread.run_sync(self._query_inputs, query, mode, targets)
        parts: list = [None] * len(targets)

        async def one(i: int, dom: Domain) -> None:
            parts[i] = await anyio.to_thread.run_sync(self._collect, dom, vec, tokens, idf, n)

        async with anyio.create_task_group() as tg:
            for i, dom in enumerate(targets):
                tg.start_soon(one, i, dom)
        return await anyio.to_thread.run_sync(self._finish, query, targets, parts, k, mode)
