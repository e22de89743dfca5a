"""The Studio pipeline: the default assistant graph and the API every front end uses.

    pipe = create_studio_pipeline(data_dir="/tmp/studio")
    turn = pipe.ask("what is a ParallelGroup?")      # a Turn, at once (studio_nb/turn.py)
    for part in turn: ...                             # StepEvent, Evidence, TextDelta, Response
    turn.text()                                       # the whole answer
    pipe.chat(...), pipe.stream(...)                  # thin helpers over ask()
    pipe.replay(turn, from_=..., params=...)          # see and change a turn: studio_nb/debug/

The graph itself lives in ``pipelines/studio.yaml``; the shared models and stores are a
``StudioResources`` built from the same configuration (``pipe.memory``,
``pipe.knowledge``). This module fills in the configuration, adds the bundled
documentation, and turns the kernel's stream (step events, streamed items, the final
Response) into a Turn's parts. Every turn carries its request's trace, which is saved
with the turn; replay, breakpoints, snapshots and per-session variants are the
debugger's (``pipe.debug``, studio_nb/debug/api.py), reachable by their short names too.
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
from studio_nb.debug.api import Debugger
from studio_nb.debug.log import TurnLog
from studio_nb.debug.trace import TurnTrace
from studio_nb.debug.variants import SessionVariants
from studio_nb.kernel import Pipeline, RequestContext, StepEvent
from studio_nb.kernel.context import new_request_id
from studio_nb.messages import Evidence, Response, StreamChunk, TextDelta, UserMessage
from studio_nb.resources import BUNDLED_DOCS_DOMAIN, StudioResources, resources_factory
from studio_nb.turn import Turn

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
    """The kernel Pipeline described by the configured YAML, with ``${key}`` filled in and
    the Studio resources (built from ``cfg``) handed to its operators."""
    import studio_nb.operators  # noqa: F401  (registers the operator classes)

    if cfg.get("pipeline"):
        text = Path(cfg["pipeline"]).expanduser().read_text(encoding="utf-8")
    else:
        text = (importlib.resources.files("studio_nb") / "pipelines" / "studio.yaml").read_text(encoding="utf-8")
    pipeline = Pipeline.from_yaml(substitute(text, cfg), engine=_make_engine(cfg))
    return pipeline.use_resources(resources_factory(cfg))


class StudioPipeline:
    """The assistant: a kernel Pipeline, its resources, and the Turn API front ends use."""

    def __init__(self, pipeline: Pipeline, config: dict[str, Any]) -> None:
        from studio_nb import telemetry

        self.pipeline = pipeline
        self.config = config
        self._docs_ingested = False
        self._ingest_work: Any = None  # the Ray ingest workers, on the Ray engine
        #: the exporters the ``telemetry`` setting switched on (``telemetry.prometheus``...)
        self.telemetry = telemetry.install(pipeline, config.get("telemetry"))
        # (user, session_id) -> nodes that session switched off; keyed by user too, so two
        # users' sessions with the same id never share toggles
        self._session_off: OrderedDict[tuple[str, str], frozenset[str]] = OrderedDict()
        self._toggle_lock = threading.Lock()
        #: the recent turns with their traces (the last ``trace_turns`` live, older ones as JSON)
        self.turns = TurnLog(live=int(config.get("trace_turns") or 16))
        self.variants = SessionVariants(pipeline, config)  # per-session settings and operators
        #: trace, replay, diff, breakpoints, snapshots and variants, beside the turns
        self.debug = Debugger(self)

    # ------------------------------------------------------------------ access
    def __getitem__(self, name: str) -> Any:
        """The live operator called ``name`` (e.g. ``pipe["knowledge_rag"]``)."""
        return self.pipeline[name]

    def __repr__(self) -> str:
        return f"StudioPipeline(data_dir={self.config['data_dir']!r}, engine={self.config['engine']!r})\n{self.pipeline!r}"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return self.pipeline._repr_mimebundle_(include, exclude)

    def to_yaml(self) -> str:
        """The graph with each operator's current settings (``pipe["prompt_builder"].max_tokens = 64``
        in a cell is written as 64): load it again with ``pipeline: <file>`` in the config."""
        return self.pipeline.to_yaml()

    @property
    def resources(self) -> StudioResources:
        """The shared models and stores the operators use."""
        return self.pipeline.resources

    @property
    def memory(self) -> Any:
        """The MemoryStore (sessions, history, clear, export)."""
        return self.resources.memory

    @property
    def knowledge(self) -> Any:
        """The KnowledgeManager (domains, ingest, search)."""
        return self.resources.knowledge

    # ------------------------------------------------------------------ lifecycle
    def warm_up(self, progress: bool = False, on_step: Any = None) -> "StudioPipeline":
        """Load the models and indexes; ingest the bundled docs the first time (idempotent).

        The chat model loads on one thread while the embedding model, the intent router's
        prototypes and the knowledge indexes load on another (the model load is native
        code and overlaps with the Python work). ``on_step(name, done, total)`` reports
        each finished step (the server shows it on the page and in ``studio/api/health``).
        """
        steps = self.resources.warm_up(on_step=on_step, progress=progress)
        self.pipeline.warm_up(progress=progress)  # the operators: each only picks up its resource now
        if self.config["bundled_docs"] and not self._docs_ingested:
            # mirror: a package that moved (another checkout, venv or Python) leaves no second copy
            self.knowledge.ingest(bundled_docs_path(), BUNDLED_DOCS_DOMAIN, progress=progress, mirror=True)
            self._add_route(BUNDLED_DOCS_DOMAIN, BUNDLED_DOCS_KEYWORDS)
            self._docs_ingested = True
        for dom in self.knowledge.domains():  # what earlier runs ingested is routed by name again
            self._add_route(dom.name, private=bool(dom.owner))
        if on_step is not None:
            on_step("ready", steps + 1, steps + 1)
        return self

    def _add_route(self, domain: str, keywords: tuple[str, ...] = (), *, private: bool = False) -> None:
        """Let the intent router send questions to an ingested domain (a ``private`` one
        only for its owner: the router hides it from everyone else)."""
        self.resources.intent.add_domain(domain, keywords=keywords, private=private)

    def _ray_ingest_work(self) -> Any:
        if self._ingest_work is None:
            from studio_nb.services.knowledge.ray_ingest import RayWork

            start = getattr(self.pipeline.engine, "start", None)
            if callable(start):
                start()  # connects to (or starts) the cluster the engine is configured for
            self._ingest_work = RayWork(workers=self.config["ingest_workers"])
        return self._ingest_work

    def close(self) -> None:
        """Free the models, indexes and files; the pipeline warms up again on next use."""
        if self._ingest_work is not None:
            self._ingest_work.close()
            self._ingest_work = None
        self.pipeline.close()
        self._docs_ingested = False
        if self.telemetry.event_bus is not None:
            self.telemetry.event_bus.flush()

    # ------------------------------------------------------------------ asking
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

    def ask(
        self,
        text: str,
        *,
        session_id: str = "default",
        user: str = "local",
        request_id: str | None = None,
        domains: list[str] | tuple[str, ...] | None = None,
        priority: int = 0,
        attachments: tuple[Any, ...] | list[Any] = (),
        search: str = "",
    ) -> Turn:
        """Start answering ``text`` and return its Turn at once (see ``studio_nb/turn.py``).

        The turn runs on studio-nb's loop (``kernel.sync``); iterate it (sync or async) to
        stream its parts, ``turn.text()`` to wait, ``turn.stop()`` to cancel.
        ``attachments`` (``messages.Attachment``: a cell or file) are part of the question,
        cited by label; ``search`` is what retrieval looks for when not the question itself.
        """
        rid = request_id or new_request_id()
        msg = UserMessage(
            text, session_id=session_id, request_id=rid, user=user, priority=priority,
            domains=tuple(domains) if domains else None, attachments=tuple(attachments), search=search,
        )
        turn = Turn(text, session_id=session_id, request_id=rid, user=user)
        return self.start_turn(turn, msg, self.context_for(turn, priority=priority))

    def context_for(self, turn: Turn, *, disabled: frozenset[str] = frozenset(), overrides: dict | None = None,
                 meta: dict | None = None, priority: int = 0) -> RequestContext:
        """The kernel context of ``turn``'s request: the session's toggles and variants, the
        breakpoints, the turn as the pause handler, a fresh trace."""
        sid, user = turn.session_id, turn.user
        ctx = RequestContext(
            request_id=turn.request_id, session_id=sid, priority=priority, user=user,
            disabled=self.session_disabled(sid, user) | disabled,
            overrides=self.variants.overrides(sid, user) if overrides is None else overrides,
            breakpoints=self.debug.breakpoints_for(sid), on_pause=turn.on_pause, trace=TurnTrace(meta=meta),
        )
        turn.bind(ctx, self.debug)
        return ctx

    def start_turn(self, turn: Turn, value: Any, ctx: RequestContext) -> Turn:
        """Run the request ``ctx`` for ``turn`` from ``value`` (a question, or a replay's
        first input) on the background loop; the turn is kept in ``turns``."""
        self.turns.add(turn)
        return turn.start(lambda t: self._parts(t, value, ctx))

    async def _parts(self, turn: Turn, value: Any,
                     ctx: RequestContext) -> AsyncIterator[StepEvent | Evidence | TextDelta | Response]:
        """The kernel's stream for one request as Turn parts."""
        import anyio

        if not self._docs_ingested and self.config["bundled_docs"]:
            await anyio.to_thread.run_sync(self.warm_up)
        self._check_owner(ctx.session_id, ctx.user)
        attempt, rid, sid = 0, ctx.request_id, ctx.session_id
        async for item in self.pipeline.astream(value, events=True, context=ctx):
            if isinstance(item, StreamChunk):
                if item.attempt != attempt:
                    attempt = item.attempt
                    yield TextDelta("", rid, sid, restart=True)
                if item.content:
                    yield TextDelta(item.content, rid, sid)
            elif isinstance(item, Response):
                if item.turn_id is not None:  # saved: keep its trace with it, before the turn ends
                    await anyio.to_thread.run_sync(self._save_trace, turn, ctx)
                yield item
            elif isinstance(item, (StepEvent, Evidence)):
                yield item

    def _save_trace(self, turn: Turn, ctx: RequestContext) -> None:
        try:
            turn.stored_trace = data = ctx.trace.stored_json()
            self.memory.save_trace(ctx.session_id, ctx.request_id, data, user=ctx.user)
        except Exception:  # a trace is for inspection: losing it must not fail the answer
            import logging

            logging.getLogger(__name__).exception("saving the trace of turn %s failed", ctx.request_id)

    # the older helpers, now thin wrappers over ask()
    def stream(self, text: str, *, events: bool = True, **kw: Any) -> Iterator[StepEvent | Evidence | TextDelta | Response]:
        """The parts of ``ask(text)`` as they come (without StepEvents when ``events=False``);
        leaving the loop early stops the turn."""
        turn = self.ask(text, **kw)
        try:
            for part in turn:
                if events or not isinstance(part, StepEvent):
                    yield part
        finally:
            turn.stop()  # a no-op once the turn has ended

    async def astream(self, text: str, *, events: bool = True, **kw: Any) -> AsyncIterator[Any]:
        turn = self.ask(text, **kw)
        try:
            async for part in turn:
                if events or not isinstance(part, StepEvent):
                    yield part
        finally:
            turn.stop()

    def chat(self, text: str, **kw: Any) -> Response:
        """One turn, waiting for the whole answer."""
        return self.ask(text, **kw).response

    async def achat(self, text: str, **kw: Any) -> Response:
        return await self.ask(text, **kw)

    # ------------------------------------------------------------------ the debugger's short names
    def breakpoint(self, name: str, enabled: bool = True, *, session_id: str | None = None) -> dict[str, Any]:
        """``pipe.debug.breakpoint``: pause the next turns before operator ``name``."""
        return self.debug.breakpoint(name, enabled, session_id=session_id)

    def clear_breakpoints(self) -> None:
        """``pipe.debug.clear_breakpoints``."""
        self.debug.clear_breakpoints()

    @property
    def breakpoints(self) -> dict[str, list[str] | None]:
        """``pipe.debug.breakpoints``: operator -> the sessions it applies to (None: all)."""
        return self.debug.breakpoints

    def replay(self, turn: Any, from_: str | None = None, **kw: Any) -> Turn:
        """``pipe.debug.replay``: run a turn again from an operator, changed."""
        return self.debug.replay(turn, from_, **kw)

    def resume(self, snapshot: Any) -> Turn:
        """``pipe.debug.resume``: continue a paused turn from its snapshot."""
        return self.debug.resume(snapshot)

    def past_turn(self, request_id: str | None = None, **kw: Any) -> Turn | None:
        """``pipe.debug.past_turn``: a finished turn with its trace, even after a restart."""
        return self.debug.past_turn(request_id, **kw)

    def trace_view(self, session_id: str, **kw: Any) -> dict[str, Any] | None:
        """``pipe.debug.trace_view``: the JSON the page's inspector shows."""
        return self.debug.trace_view(session_id, **kw)

    def session_variants(self, session_id: str | None = None, user: str | None = None) -> dict[str, Any]:
        """``pipe.debug.session_variants``."""
        return self.debug.session_variants(session_id, user)

    def set_session_variant(self, **kw: Any) -> dict[str, Any]:
        """``pipe.debug.set_session_variant``."""
        return self.debug.set_session_variant(**kw)

    # ------------------------------------------------------------------ knowledge
    def ingest(self, path: str | Path, domain: str, progress: bool = True, *, user: str | None = None,
               admin: bool = False, shared: bool = False, **options: Any) -> Any:
        """Ingest into ``domain``: private to ``user`` when one is named (see KnowledgeManager,
        whose ``limits`` and ``control`` pass through ``options``). On the Ray engine the
        splitting and embedding run on the cluster's workers (``ray_ingest.RayWork``,
        ``ingest_workers`` of them; None: one per CPU), written to the same store."""
        if self.config["engine"] == "ray" and "work" not in options:
            options["work"] = self._ray_ingest_work()
        report = self.knowledge.ingest(path, domain, progress=progress, user=user, admin=admin, shared=shared,
                                       **options)
        self._add_route(domain, private=user is not None and not (admin and shared))
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
            ops = {op.name: op.is_warm for op in self.pipeline.operators()}
            return {"status": "ready" if all(ops.values()) else "warming", "engine": self.config["engine"]}
        ops = {op.name: op.is_warm for op in self.pipeline.operators()}
        res = self.resources
        llm = res.llm if res.built("llm") else None
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
            "llm": {"loaded": llm is not None, "model": getattr(llm, "model_name", None), "config": self.config["llm"]},
            "answer_mode": self.config["answer_mode"],
            "domains": domains,
            "engine": self.config["engine"],
            "data_dir": self.config["data_dir"],
            "versions": versions,
        }


def create_studio_pipeline(config: dict[str, Any] | str | None = None, **overrides: Any) -> StudioPipeline:
    """Build the default Studio pipeline (cheap: models load in ``warm_up`` or on first use).

    ``config`` is a dict or a YAML file of the keys in ``studio_nb.config.DEFAULTS``;
    keyword overrides win (``data_dir=...``, ``max_tokens=64``, ``answer_mode="extractive"``,
    ``llm={...}``, ``engine="ray"``).
    """
    cfg = load_config(config, **overrides)
    return StudioPipeline(build_pipeline(cfg), cfg)

