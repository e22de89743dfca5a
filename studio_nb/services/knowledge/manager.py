"""KnowledgeManager: the knowledge service's one public entry point.

It owns the domains under ``data_dir/knowledge/``, ingests files into them and answers
searches with dense (hnswlib), lexical (BM25) or hybrid (fused) retrieval.

Who sees what is decided here, once, for every caller (REST, search, the answer path,
the knowledge tools): a domain is either *shared* (no owner: what the admin ingested and
the bundled docs) or *private* to the user who uploaded it. ``user=None`` is a trusted
in-process caller (a notebook, the CLI) and sees and writes everything; a named user
reads the shared domains (those in ``shared_domains``, when that is set) and their own,
and writes only their own. A private domain's name is unique across users, so writing to
someone else's name is refused rather than silently forking it. ``__init__``
only records settings; ``warm_up`` loads indexes, the embedding model and jieba (and runs
lazily on first use). Searches may run from many threads at once; ``asearch`` searches
the domains concurrently in worker threads.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Iterable

from studio_nb.errors import ConfigError, ForbiddenError
from studio_nb.services import private_files
from studio_nb.services import tokenizer
from studio_nb.services.knowledge.bm25 import term_weights
from studio_nb.services.knowledge.domain import STORE_FILE, Domain
from studio_nb.services.knowledge.fusion import METHODS, dense_weight, fuse
from studio_nb.services.knowledge.ingest import ingest_path
from studio_nb.services.knowledge.limits import IngestControl, IngestLimits
from studio_nb.services.knowledge.split_text import SplitConfig
from studio_nb.services.knowledge.types import DomainInfo, IngestReport, SearchHit

MODES = ("hybrid", "dense", "lexical")
STANDARD_DOMAINS = ("sage_docs", "examples", "research_guidance", "user_uploads")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
#: capitalised words that are not at a sentence start ("... the Gateway ..."), and acronyms
_CAPITALISED = re.compile(r"(?<=[a-z,;:]\s)[A-Z][a-zA-Z]{2,}|\b[A-Z]{3,}\b")


def check_domain_name(name: str) -> str:
    """``name`` if it is a valid domain name (also a safe folder name), else ConfigError."""
    return _check_name(name)


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
        shared_domains: Iterable[str] | None = None,
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
        #: shared (ownerless) domains named users may read; None = all of them
        self.shared_domains: frozenset[str] | None = None if shared_domains is None else frozenset(shared_domains)

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
            private_files.make_dir(self.root)  # owner-only: a private upload's chunks live under it
            for sub in sorted(self.root.iterdir()):
                if sub.name not in self._domains and (sub / STORE_FILE).exists() and _NAME.match(sub.name):
                    self._domains[sub.name] = Domain.open(sub.name, sub)
            warm = getattr(self.embedder, "warm_up", None)
            if warm:
                warm()
            tokenizer.warm_up()
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

    # -- access -----------------------------------------------------------------------
    def can_read(self, dom: Domain, user: str | None) -> bool:
        """The visibility rule: trusted callers see all; a user, the shared domains and theirs."""
        if user is None or dom.owner == user:
            return True
        return not dom.owner and (self.shared_domains is None or dom.name in self.shared_domains)

    def readable(self, user: str | None) -> list[str]:
        """Names of the domains ``user`` may search and list."""
        self.warm_up()
        with self._lock:
            return sorted(n for n, d in self._domains.items() if self.can_read(d, user))

    def check_write(self, name: str, user: str | None, *, admin: bool = False) -> None:
        """Raise unless ``user`` may write ``name``: bad names are ConfigError, shared or
        other users' domains ForbiddenError. Call it before saving anything for an upload."""
        _check_name(name)
        self.warm_up()
        with self._lock:
            self._check_write(self._domains.get(name), name, user, admin)

    @staticmethod
    def _check_write(dom: Domain | None, name: str, user: str | None, admin: bool) -> None:
        if dom is None or user is None or dom.owner == user or (admin and not dom.owner):
            return
        raise ForbiddenError(
            f"knowledge domain {name!r} is read-only for you (shared, or another user's); "
            "upload to a domain name of your own"
        )

    # -- domains ----------------------------------------------------------------------
    def domains(self, user: str | None = None) -> list[DomainInfo]:
        """The domains ``user`` may read (None: all), by name."""
        self.warm_up()
        with self._lock:
            doms = [d for d in self._domains.values() if self.can_read(d, user)]
        return [d.info() for d in sorted(doms, key=lambda d: d.name)]

    def private_to_others(self, user: str | None) -> frozenset[str]:
        """Names of the domains ``user`` may not read (others' private ones; None: none)."""
        if user is None:
            return frozenset()
        self.warm_up()
        with self._lock:
            return frozenset(d.name for d in self._domains.values() if not self.can_read(d, user))

    def locate(self, domain: str, source: str, user: str | None = None) -> Path | None:
        """The file on disk a chunk's ``source`` came from (None: gone, or a domain ``user``
        may not read) — what a citation opens."""
        self.warm_up()
        with self._lock:
            dom = self._domains.get(domain)
        if dom is None or not self.can_read(dom, user):
            return None
        for root in dom.store.roots():
            base = Path(root)
            candidate = base if base.is_file() and base.name == source else base / source
            if candidate.is_file():
                return candidate
        return None

    def remove_domain(self, name: str, user: str | None = None, *, admin: bool = False) -> bool:
        """Delete a domain and its files; False when there was no such domain ``user`` can see."""
        _check_name(name)
        self.warm_up()
        with self._lock:
            dom = self._domains.get(name)
            if dom is None or not self.can_read(dom, user):
                return False
            self._check_write(dom, name, user, admin)
            self._domains.pop(name)
        dom.destroy()
        return True

    def _domain_for_write(self, name: str, user: str | None = None, *, admin: bool = False,
                          shared: bool = False) -> Domain:
        with self._lock:
            dom = self._domains.get(name)
            self._check_write(dom, name, user, admin)  # under the lock: two users cannot both create it
            if dom is None:
                model = getattr(self.embedder, "model_path", None) or f"{type(self.embedder).__name__}(default)"
                owner = "" if user is None or (admin and shared) else user
                dom = Domain.open(name, self.root / name, dim=int(self.embedder.dim), model=str(model), owner=owner)
                self._domains[name] = dom
            elif dom.dim != int(self.embedder.dim):
                raise ConfigError(
                    f"knowledge domain {name!r} holds {dom.dim}-d vectors but the embedder makes "
                    f"{self.embedder.dim}-d ones; fix: use the model it was built with or remove_domain({name!r})"
                )
            return dom

    # -- ingest -----------------------------------------------------------------------
    def ingest(self, path: str | Path, domain: str, progress: bool = True, *, user: str | None = None,
               admin: bool = False, shared: bool = False, mirror: bool = False, limits: IngestLimits | None = None,
               control: IngestControl | None = None, work=None) -> IngestReport:
        """Index a file or folder into ``domain`` (created on first use), incrementally.

        A domain created by a named ``user`` is private to them, unless an ``admin`` asks
        for a ``shared`` one; ``user=None`` (notebook, CLI) creates shared domains.
        ``mirror``: the domain keeps only what is at ``path`` (files from other roots go).
        ``limits`` bound what the ingest may cost (LimitExceeded, nothing stored) and
        ``control`` cancels it or watches it (see limits.py); a server passes both.
        ``work`` is where splitting and embedding run: this process (None) or a Ray
        cluster's workers (``ray_ingest.RayWork``); the store written is the same.
        """
        _check_name(domain)
        self.warm_up()
        with self._lock:
            existed = domain in self._domains
        dom = self._domain_for_write(domain, user, admin=admin, shared=shared)
        try:
            return ingest_path(dom, Path(path), self.embedder, self.split, progress=progress,
                               batch_size=self.batch_size, mirror=mirror, limits=limits, control=control, work=work)
        except BaseException:
            if not existed:
                self._drop_if_empty(dom)  # a refused or cancelled first ingest leaves no empty domain behind
            raise

    def _drop_if_empty(self, dom: Domain) -> None:
        with self._lock:
            if self._domains.get(dom.name) is not dom or dom.store.counts()[1] or not dom.ingest_lock.acquire(False):
                return  # kept: it holds chunks, or another ingest is writing it
            try:
                self._domains.pop(dom.name)
            finally:
                dom.ingest_lock.release()
        dom.destroy()

    def owned_chunks(self, user: str) -> int:
        """How many chunks the domains private to ``user`` hold (what a per-user limit counts)."""
        self.warm_up()
        with self._lock:
            doms = [d for d in self._domains.values() if d.owner == user]
        return sum(d.store.counts()[1] for d in doms)

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
            if any(0 < d.df(token) <= max_share * max(d.size, 1) for d in doms):
                found.append(name)
        return found

    def _plan(self, query: str, domains: Iterable[str] | None, k: int, mode: str, user: str | None = None):
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
            # ... and one the user may not read is left out the same way, so it cannot be probed
            targets = [d for n, d in sorted(self._domains.items())
                       if (names is None or n in names) and self.can_read(d, user)]
        return targets, max(self.candidates, k)

    def _query_inputs(self, query: str, mode: str, targets: list[Domain]):
        vec = self.embedder.encode([query])[0] if mode != "lexical" else None
        tokens = idf = None
        if mode != "dense":
            tokens = tokenizer.tokenize(query)
            # term weights over all the domains searched: their BM25 scores can be merged
            idf = term_weights(tokens, [d.term_frequencies(tokens) for d in targets])
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

    def search(self, query: str, domains: Iterable[str] | None = None, k: int = 5, mode: str = "hybrid",
               *, user: str | None = None) -> list[SearchHit]:
        """The ``k`` best chunks for ``query`` across ``domains`` (None = all ``user`` may read)."""
        targets, n = self._plan(query, domains, k, mode, user)
        if not targets or not query.strip():
            return []
        vec, tokens, idf = self._query_inputs(query, mode, targets)
        parts = [self._collect(d, vec, tokens, idf, n) for d in targets]
        return self._finish(query, targets, parts, k, mode)

    async def asearch(
        self, query: str, domains: Iterable[str] | None = None, k: int = 5, mode: str = "hybrid",
        *, user: str | None = None,
    ) -> list[SearchHit]:
        """``search`` without blocking the event loop; domains are searched concurrently."""
        import anyio

        targets, n = await anyio.to_thread.run_sync(self._plan, query, domains, k, mode, user)
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
