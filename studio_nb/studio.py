"""The Studio pipeline: the default assistant graph and the API every front end uses.

    pipe = create_studio_pipeline(data_dir="/tmp/studio")
    resp = pipe.chat("what is a ParallelGroup?")
    for ev in pipe.stream("SAGE 的 LocalEnvironment 是什么？", events=True): ...

The graph itself lives in ``pipelines/studio.yaml``; this module fills in the
configuration, adds the bundled documentation, and turns the kernel's stream (step
events, StreamChunks, the final Response) into what a chat client wants (StepEvent,
TextDelta, Response).
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.resources
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

from studio_nb.access import check_session
from studio_nb.config import load_config, substitute
from studio_nb.kernel import Pipeline, RequestContext, StepEvent
from studio_nb.kernel.context import new_request_id
from studio_nb.kernel.sync import iterate_sync, run_sync
from studio_nb.messages import Response, StreamChunk, TextDelta, UserMessage

BUNDLED_DOCS_DOMAIN = "studio_nb_docs"
#: words that send a question to studio-nb's own documentation
BUNDLED_DOCS_KEYWORDS = ("studio-nb", "studio_nb", "studio nb", "sage_chat", "chatpanel", "jupyter_ext")
#: per-session toggles kept in memory (least recently used dropped first)
MAX_SESSION_TOGGLES = 10_000


def bundled_docs_path() -> Path:
    """studio-nb's own documentation, shipped inside the package."""
    return Path(str(importlib.resources.files("studio_nb") / "data" / "docs"))


def _make_engine(cfg: dict[str, Any]) -> Any:
    if cfg["engine"] == "ray":
        from studio_nb.kernel.ray_engine import RayEngine

        return RayEngine(**{k: v for k, v in cfg["ray"].items() if v is not None})
    return None  # the Pipeline's default LocalEngine


def build_pipeline(cfg: dict[str, Any]) -> Pipeline:
    """The kernel Pipeline described by the configured YAML, with ``${key}`` filled in."""
    import studio_nb.operators  # noqa: F401  (registers the operator classes)

    if cfg.get("pipeline"):
        text = Path(cfg["pipeline"]).expanduser().read_text(encoding="utf-8")
    else:
        text = (importlib.resources.files("studio_nb") / "pipelines" / "studio.yaml").read_text(encoding="utf-8")
    return Pipeline.from_yaml(substitute(text, cfg), engine=_make_engine(cfg))


class StudioPipeline:
    """The assistant: a kernel Pipeline plus the services front ends need around it."""

    def __init__(self, pipeline: Pipeline, config: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.config = config
        self._docs_ingested = False
        # (user, session_id) -> nodes that session switched off; keyed by user too, so two
        # users' sessions with the same id never share toggles
        self._session_off: OrderedDict[tuple[str, str], frozenset[str]] = OrderedDict()
        self._toggle_lock = threading.Lock()

    # ------------------------------------------------------------------ access
    def __getitem__(self, name: str) -> Any:
        """The live operator called ``name`` (e.g. ``pipe["knowledge_rag"]``)."""
        return self.pipeline[name]

    def __repr__(self) -> str:
        return f"StudioPipeline(data_dir={self.config['data_dir']!r}, engine={self.config['engine']!r})\n{self.pipeline!r}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.pipeline._repr_mimebundle_(include, exclude)

    @property
    def memory(self) -> Any:
        """The MemoryStore (sessions, history, clear, export)."""
        from studio_nb.services import shared

        return shared.memory_store(
            self.config["data_dir"],
            self.config["memory_window"],
            self.config["memory_recall_k"],
            self.config["embedding_model"],
        )

    @property
    def knowledge(self) -> Any:
        """The KnowledgeManager (domains, ingest, search)."""
        from studio_nb.services import shared

        km = shared.knowledge_manager(self.config["data_dir"], self.config["embedding_model"])
        shared_domains = self.config.get("shared_domains")
        if shared_domains is not None:  # the bundled docs are always shared
            km.shared_domains = frozenset([*shared_domains, BUNDLED_DOCS_DOMAIN])
        return km

    # ------------------------------------------------------------------ lifecycle
    def warm_up(self, progress: bool = False) -> "StudioPipeline":
        """Load the models and indexes; ingest the bundled docs the first time (idempotent)."""
        self.pipeline.warm_up(progress=progress)
        if self.config["bundled_docs"] and not self._docs_ingested:
            self.knowledge.ingest(bundled_docs_path(), BUNDLED_DOCS_DOMAIN, progress=progress)
            self._add_route(BUNDLED_DOCS_DOMAIN, BUNDLED_DOCS_KEYWORDS)
            self._docs_ingested = True
        return self

    def _add_route(self, domain: str, keywords: tuple[str, ...] = ()) -> None:
        """Let the intent router send questions to an ingested domain."""
        classifier = getattr(self.pipeline["intent_router"], "classifier", None)
        if classifier is not None:
            classifier.add_domain(domain, keywords=keywords)

    def close(self) -> None:
        self.pipeline.close()

    # ------------------------------------------------------------------ chatting
    def _check_owner(self, session_id: str, user: str) -> None:
        # the one ownership rule (studio_nb.access): another user's session is "unknown"
        check_session(self.memory, session_id, user, must_exist=False)

    # ------------------------------------------------------------------ toggles
    def set_session_enabled(self, name: str, enabled: bool, *, session_id: str, user: str) -> frozenset[str]:
        """Switch node ``name`` off (or back on) for one session of ``user`` only (A/B).

        The global switch (``pipeline.set_enabled``) changes every user's pipeline; this
        one is carried by each request of the session (``RequestContext.disabled``).
        Returns the session's switched-off nodes.
        """
        self.pipeline.check_toggle(name, enabled)  # same wiring rules as the global switch
        self._check_owner(session_id, user)
        key = (user, session_id)
        with self._toggle_lock:
            off = set(self._session_off.pop(key, frozenset()))
            off.discard(name) if enabled else off.add(name)
            if off:
                self._session_off[key] = frozenset(off)
                while len(self._session_off) > MAX_SESSION_TOGGLES:
                    self._session_off.popitem(last=False)
            return frozenset(off)

    def session_disabled(self, session_id: str | None, user: str | None) -> frozenset[str]:
        """The nodes ``user`` switched off for ``session_id``."""
        if session_id is None or user is None:
            return frozenset()
        with self._toggle_lock:
            return self._session_off.get((user, session_id), frozenset())

    def graph(self, *, session_id: str | None = None, user: str | None = None) -> dict[str, Any]:
        """The pipeline graph as ``user``'s session sees it: ``enabled`` is what will run,
        ``enabled_globally`` the admin's switch."""
        graph = self.pipeline.graph()
        off = self.session_disabled(session_id, user)
        for node in graph["nodes"]:
            node["enabled_globally"] = node["enabled"]
            node["enabled"] = node["enabled"] and node["name"] not in off
        return graph

    async def astream(
        self,
        text: str,
        *,
        session_id: str = "default",
        user: str = "local",
        request_id: str | None = None,
        domains: list[str] | tuple[str, ...] | None = None,
        priority: int = 0,
        events: bool = True,
    ) -> AsyncIterator[StepEvent | TextDelta | Response]:
        """Stream one turn: StepEvents (if ``events``), TextDeltas, then the Response.

        Closing the iterator or cancelling its task stops generation.
        """
        if not self._docs_ingested and self.config["bundled_docs"]:
            import anyio

            await anyio.to_thread.run_sync(self.warm_up)
        self._check_owner(session_id, user)
        rid = request_id or new_request_id()
        msg = UserMessage(
            text, session_id=session_id, request_id=rid, user=user, priority=priority,
            domains=tuple(domains) if domains else None,
        )
        ctx = RequestContext(request_id=rid, session_id=session_id, priority=priority, user=user,
                             disabled=self.session_disabled(session_id, user))
        attempt = 0
        async for item in self.pipeline.astream(msg, events=events, context=ctx):
            if isinstance(item, StreamChunk):
                if item.attempt != attempt:
                    attempt = item.attempt
                    yield TextDelta("", rid, session_id, restart=True)
                if item.content:
                    yield TextDelta(item.content, rid, session_id)
            elif isinstance(item, (StepEvent, Response)):
                yield item

    def stream(self, text: str, **kw: Any) -> Iterator[StepEvent | TextDelta | Response]:
        """Synchronous ``astream`` (works inside Jupyter's running loop)."""
        return iterate_sync(lambda: self.astream(text, **kw))

    async def achat(self, text: str, **kw: Any) -> Response:
        """One turn, waiting for the whole answer."""
        response = None
        async for item in self.astream(text, events=False, **kw):
            if isinstance(item, Response):
                response = item
        return response

    def chat(self, text: str, **kw: Any) -> Response:
        return run_sync(lambda: self.achat(text, **kw))

    # ------------------------------------------------------------------ knowledge
    def ingest(self, path: str | Path, domain: str, progress: bool = True, *, user: str | None = None,
               admin: bool = False, shared: bool = False) -> Any:
        """Ingest into ``domain``: private to ``user`` when one is named (see KnowledgeManager)."""
        report = self.knowledge.ingest(path, domain, progress=progress, user=user, admin=admin, shared=shared)
        self._add_route(domain)
        return report

    def search(self, query: str, domains: list[str] | None = None, k: int = 5, mode: str = "hybrid",
               *, user: str | None = None) -> list[Any]:
        """Search the domains ``user`` may read (None: all)."""
        self.knowledge.warm_up()
        return self.knowledge.search(query, domains=domains, k=k, mode=mode, user=user)

    # ------------------------------------------------------------------ status
    def health(self, *, detail: bool = True) -> dict[str, Any]:
        """What is loaded, how big the indexes are, and which versions run.

        ``detail=False`` (what a server shows its non-admin users) leaves out paths,
        versions, configuration and other users' domains: only the status.
        """
        if not detail:
            ops = {op.name: op._warm for op in self.pipeline.operators()}
            return {"status": "ready" if all(ops.values()) else "warming", "engine": self.config["engine"]}
        ops = {op.name: op._warm for op in self.pipeline.operators()}
        llm = self.pipeline["llm_inference"]
        client = getattr(llm, "client", None)
        versions = {}
        for dist in ("studio-nb", "llama-cpp-python", "sentence-transformers", "hnswlib", "torch", "jupyter_server"):
            try:
                versions[dist] = md.version(dist)
            except md.PackageNotFoundError:
                versions[dist] = None
        try:
            domains = [
                {"name": d.name, "files": d.files, "chunks": d.chunks, "index_bytes": d.index_bytes}
                for d in self.knowledge.domains()
            ]
        except Exception as exc:  # health must answer even when an index is broken
            domains = [{"error": f"{type(exc).__name__}: {exc}"}]
        return {
            "status": "ready" if all(ops.values()) else "warming",
            "operators_warm": ops,
            "llm": {"loaded": client is not None, "model": getattr(client, "model_name", None), "config": self.config["llm"]},
            "domains": domains,
            "engine": self.config["engine"],
            "data_dir": self.config["data_dir"],
            "versions": versions,
        }


def create_studio_pipeline(config: dict[str, Any] | str | None = None, **overrides: Any) -> StudioPipeline:
    """Build the default Studio pipeline (cheap: models load in ``warm_up`` or on first chat).

    ``config`` is a dict or a YAML file of the keys in ``studio_nb.config.DEFAULTS``;
    keyword overrides win (``data_dir=...``, ``max_tokens=64``, ``llm={...}``, ``engine="ray"``).
    """
    cfg = load_config(config, **overrides)
    return StudioPipeline(build_pipeline(cfg), cfg)
