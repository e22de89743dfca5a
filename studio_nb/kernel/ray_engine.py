"""The Ray engine: the same graph walk and policies as LocalEngine, operators placed on Ray.

Only ``call_operator`` changes. Where an operator runs comes from configuration
(``RayEngine(placement={"llm_inference": "pool:llm"})``) or a hint on its class, so
operator code never changes with the engine::

    class Generate(Operator):
        placement: ClassVar[str] = "pool:gpu"

- ``"local"`` (default): in the driver, exactly as LocalEngine does it;
- ``"session"``: on the named actor ``studio_nb/session/<session_id>``: a session's
  operators keep their state on one actor; sessions spread over the cluster;
- ``"pool:<name>"``: on one worker of a named actor pool; the pools, their sizes and
  resources are configuration (``pools={"llm": {"size": 2, "num_cpus": 1,
  "max_concurrency": 1}}``), the kernel knows no pool by name; each worker rebuilds and
  keeps its own operator (with its own resources, e.g. a model) and serves
  ``max_concurrency`` messages at a time;
- ``"task"``: a stateless Ray task (cheap ops, tools); non-idempotent operators get
  ``max_retries=0`` so Ray never repeats their side effects.

``placement`` overrides the class hint per node.
Streaming operators come back through Ray streaming generators, item by item, into the
same ``emit`` the local engine uses. A worker that dies mid-call ends the attempt with
``WorkerDiedError`` (code ``worker_died``); its actor is restarted by Ray or re-created
on the next call. Ray is imported and initialised lazily, on first use.
"""

from __future__ import annotations

import collections
import itertools
import os
from dataclasses import dataclass, field
from typing import Any

import anyio

from studio_nb.kernel.errors import ConfigError, StudioError
from studio_nb.kernel.context import RequestContext
from studio_nb.kernel.engine import LocalEngine
from studio_nb.kernel.graph import Node
from studio_nb.kernel.ray_actors import CallInfo, OperatorHost, OperatorSpec, spec_for, task_call, task_stream

PLACEMENTS = ("local", "session", "task")

#: a pool nobody configured: one worker, half a CPU, one message at a time
DEFAULT_POOL = {"size": 1, "num_cpus": 0.5, "num_gpus": 0, "max_concurrency": 1}
DEFAULT_OBJECT_STORE_BYTES = 200 * 1024**2


class WorkerDiedError(StudioError):
    """The Ray worker running an operator died (killed, crashed, node lost) mid-call."""

    code = "worker_died"

    def __init__(self, message: str, operator: str = "") -> None:
        super().__init__(message)
        self.operator = operator

    def __reduce__(self) -> Any:
        return (type(self), (str(self), self.operator))


def placement_of(op: Any, override: str | None = None) -> str:
    """The validated placement of ``op``: an override, else its class's ``placement``."""
    where = override or getattr(type(op), "placement", "local")
    if where in PLACEMENTS or (where.startswith("pool:") and len(where) > 5):
        return where
    raise ConfigError(
        f"operator {getattr(op, 'name', op)!r} has placement {where!r}; "
        "use 'local', 'session', 'task' or 'pool:<name>' (e.g. 'pool:llm')"
    )


@dataclass
class _Pool:
    """A named actor pool: which worker gets the next message (least busy, round robin)."""

    name: str
    size: int
    options: dict[str, Any]
    in_flight: list[int] = field(default_factory=list)
    handles: dict[int, Any] = field(default_factory=dict)
    _turn: Any = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.in_flight = [0] * self.size

    @property
    def per_worker(self) -> int:
        return int(self.options.get("max_concurrency", 1))

    def pick(self) -> int:
        start = next(self._turn) % self.size
        order = [(start + i) % self.size for i in range(self.size)]
        return min(order, key=lambda i: self.in_flight[i])


class RayEngine(LocalEngine):
    """Run pipelines on a Ray cluster; see the module docstring and docs/scale-out.md."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        namespace: str = "studio_nb",
        init_kwargs: dict[str, Any] | None = None,
        *,
        pools: dict[str, dict[str, Any]] | None = None,
        placement: dict[str, str] | None = None,
        task_options: dict[str, Any] | None = None,
        session_options: dict[str, Any] | None = None,
        max_restarts: int = 2,
        max_session_actors: int = 256,
    ) -> None:
        super().__init__()
        self.address = address
        self.namespace = namespace
        self.init_kwargs = dict(init_kwargs or {})
        self.placement = dict(placement or {})
        self.task_options = {"num_cpus": 0.5, **(task_options or {})}
        self.session_options = {"num_cpus": 0.01, "max_concurrency": 8, **(session_options or {})}
        self.max_restarts = max_restarts
        self.max_session_actors = max_session_actors
        self._pool_config: dict[str, dict[str, Any]] = {}
        for pname, options in (pools or {}).items():
            opts = {**DEFAULT_POOL, **(options or {})}
            if not isinstance(opts["size"], int) or opts["size"] < 1:
                raise ConfigError(f"pool {pname!r}: size must be a positive int, got {opts['size']!r}")
            self._pool_config[pname] = opts
        self._pools: dict[str, _Pool] = {}
        self._specs: dict[str, tuple[Any, OperatorSpec]] = {}
        self._sessions_actors: collections.OrderedDict[str, Any] = collections.OrderedDict()
        self._session_busy: collections.Counter[str] = collections.Counter()
        self._remote: dict[str, Any] = {}
        self._recovering: set[str] = set()
        self._owns_ray = False
        self._resources_factory: Any = None

    # ------------------------------------------------------------------ cluster
    def start(self) -> "RayEngine":
        """Connect to (or start) Ray; called on first use, callable ahead to pay the start-up early."""
        import ray

        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"namespace": self.namespace}
            if self.address is None:  # starting a private local cluster: keep it small
                kwargs.update(include_dashboard=False, object_store_memory=DEFAULT_OBJECT_STORE_BYTES)
                # on a loaded machine the metrics agent can take longer than Ray's default to start
                os.environ.setdefault("RAY_agent_register_timeout_ms", "120000")
                os.environ.setdefault("RAY_raylet_start_wait_time_s", "60")
            kwargs.update(self.init_kwargs)
            if self.address is None:
                from studio_nb.kernel.ray_startup import agent_port_fallback

                with agent_port_fallback(kwargs.get("_temp_dir") or "/tmp/ray"):
                    ray.init(address=None, **kwargs)
            else:
                ray.init(address=self.address, **kwargs)
            self._owns_ray = True
        if not self._remote:
            host = ray.remote(OperatorHost)
            self._remote = {
                "host": host,
                "call": ray.remote(task_call),
                "stream": ray.remote(task_stream),
            }
        return self

    def shutdown(self) -> None:
        """Kill the actors this engine created; stop Ray if this engine started it."""
        import ray

        if not ray.is_initialized():
            return
        for handle in [*self._sessions_actors.values(), *(h for p in self._pools.values() for h in p.handles.values())]:
            try:
                ray.kill(handle)
            except Exception:  # already gone
                pass
        self._sessions_actors.clear()
        self._pools.clear()
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False
        self._remote = {}

    # ------------------------------------------------------------------ placement
    def placement_for(self, node: Node) -> str:
        return placement_of(node.op, self.placement.get(node.name))

    def pool(self, name: str) -> _Pool:
        p = self._pools.get(name)
        if p is None:
            opts = dict(self._pool_config.get(name, DEFAULT_POOL))
            p = self._pools[name] = _Pool(name, int(opts.pop("size")), opts)
        return p

    def slot_capacity(self, node: Node) -> int | None:
        """For a pooled node, ``concurrency`` is per worker: the slots grow with the pool.

        The requests beyond that wait in the engine's limiter, by priority and bounded by
        ``queue_capacity``, rather than in Ray's unbounded FIFO actor queues.
        """
        where = self.placement_for(node)
        if not where.startswith("pool:"):
            return super().slot_capacity(node)
        pool = self.pool(where[5:])
        return (node.policy.concurrency or pool.per_worker) * pool.size

    def _spec(self, node: Node) -> OperatorSpec:
        cached = self._specs.get(node.name)
        if cached is None or cached[0] is not node.op:
            cached = self._specs[node.name] = (node.op, spec_for(node.name, node.op, self._resources_factory))
        return cached[1]

    async def execute(self, pipeline: Any, value: Any, ctx: RequestContext) -> dict[str, Any]:
        self._use_pipeline(pipeline)
        return await super().execute(pipeline, value, ctx)

    def _use_pipeline(self, pipeline: Any) -> None:
        """Workers rebuild operators with the pipeline's resources factory."""
        factory = getattr(pipeline, "resources_factory", None)
        if factory is not self._resources_factory:
            self._resources_factory = factory
            self._specs.clear()

    def _actor(self, name: str, role: str, options: dict[str, Any]) -> Any:
        opts = {k: v for k, v in options.items() if k != "size"}
        return self._remote["host"].options(
            name=name,
            namespace=self.namespace,
            get_if_exists=True,
            max_restarts=self.max_restarts,
            max_task_retries=0,  # a call lost with its worker fails; the kernel policy decides on retries
            scheduling_strategy="SPREAD",
            **opts,
        ).remote(role)

    def _pool_worker(self, pool: _Pool, index: int) -> Any:
        handle = pool.handles.get(index)
        if handle is None:
            handle = pool.handles[index] = self._actor(self._pool_name(pool, index), f"pool:{pool.name}", pool.options)
        return handle

    @staticmethod
    def _pool_name(pool: _Pool, index: int) -> str:
        return f"studio_nb/pool/{pool.name}/{index}"

    def _session_actor(self, session_id: str) -> Any:
        handle = self._sessions_actors.get(session_id)
        if handle is None:
            handle = self._actor(f"studio_nb/session/{session_id}", "session", self.session_options)
            self._sessions_actors[session_id] = handle
            self._evict_sessions()
        else:
            self._sessions_actors.move_to_end(session_id)
        return handle

    async def _ready(self, name: str, get: Any, drop: Any, timeout_s: float = 120.0) -> Any:
        """After a worker died: wait until its actor answers again (Ray restarting it), or
        create a fresh one if Ray gave up, before handing it the next message."""
        from ray import exceptions as rex

        deadline = anyio.current_time() + timeout_s
        while True:
            handle = get()
            try:
                await handle.describe.remote()
                self._recovering.discard(name)
                return handle
            except rex.ActorUnavailableError:  # restarting
                pass
            except rex.RayActorError:  # dead for good: forget it, the next get() re-creates it
                drop(handle)
            if anyio.current_time() > deadline:
                raise WorkerDiedError(f"Ray worker {name!r} did not come back within {timeout_s:g} s", name)
            await anyio.sleep(0.2)

    def _evict_sessions(self) -> None:
        import ray

        idle = [s for s in self._sessions_actors if not self._session_busy[s]]
        while len(self._sessions_actors) > self.max_session_actors and idle:
            ray.kill(self._sessions_actors.pop(idle.pop(0)))

    def end_session(self, session_id: str) -> bool:
        """Release the actor of ``session_id`` (its operators' state goes with it)."""
        import ray

        handle = self._sessions_actors.pop(session_id, None)
        if handle is None:
            return False
        ray.kill(handle)
        return True

    def actors(self) -> dict[str, Any]:
        """What runs where: ``{actor name: {role, pid, node_id, operators}}`` (blocking)."""
        import ray

        named = {f"studio_nb/session/{s}": h for s, h in self._sessions_actors.items()}
        for p in self._pools.values():
            named.update({f"studio_nb/pool/{p.name}/{i}": h for i, h in p.handles.items()})
        return {name: ray.get(h.describe.remote()) for name, h in named.items()}

    def warm_up(self, pipeline: Any) -> None:
        """Create every pool worker and load its operators now, not on the first turn."""
        import ray

        self.start()
        self._use_pipeline(pipeline)
        refs = []
        for node in pipeline.nodes.values():
            if node.is_group:
                continue
            where = self.placement_for(node)
            if where.startswith("pool:"):
                pool = self.pool(where[5:])
                refs += [self._pool_worker(pool, i).warm_up.remote(self._spec(node)) for i in range(pool.size)]
        ray.get(refs)

    # ------------------------------------------------------------------ running
    async def call_operator(self, node: Node, value: Any, ctx: RequestContext, emit: Any) -> Any:
        where = self.placement_for(node)
        if where == "session" and ctx.session_id is None:
            where = "task"  # no session to pin to: a stateless run
        self.stats_for(node.name).extra["placement"] = where
        if where == "local":
            return await super().call_operator(node, value, ctx, emit)
        self.start()
        spec, info = self._spec(node), CallInfo.of(ctx)
        if where == "task":
            return await self._run(node, where, None, spec, value, info, emit)
        if where == "session":
            sid = ctx.session_id
            self._session_busy[sid] += 1
            try:
                name = f"studio_nb/session/{sid}"
                handle = self._session_actor(sid)
                if name in self._recovering:
                    handle = await self._ready(
                        name, lambda: self._session_actor(sid), lambda h: self._forget(h, sid, None)
                    )
                return await self._run(node, where, handle, spec, value, info, emit, session=sid)
            finally:
                self._session_busy[sid] -= 1
                if not self._session_busy[sid]:
                    del self._session_busy[sid]
        pool = self.pool(where[5:])
        index = pool.pick()
        pool.in_flight[index] += 1
        try:
            handle = self._pool_worker(pool, index)
            if self._pool_name(pool, index) in self._recovering:
                handle = await self._ready(
                    self._pool_name(pool, index),
                    lambda: self._pool_worker(pool, index),
                    lambda h: self._forget(h, None, (pool, index)),
                )
            return await self._run(node, where, handle, spec, value, info, emit, pool=(pool, index))
        finally:
            pool.in_flight[index] -= 1

    def _submit(self, node: Node, handle: Any, spec: OperatorSpec, value: Any, info: CallInfo) -> Any:
        args = (spec, value, info)
        try:
            if handle is None:
                retries = self.task_options.get("max_retries", 3) if node.op.idempotent else 0
                opts = {**self.task_options, "max_retries": retries, "retry_exceptions": False}
                if spec.streaming:
                    return self._remote["stream"].options(num_returns="streaming", **opts).remote(*args)
                return self._remote["call"].options(**opts).remote(*args)
            if spec.streaming:
                return handle.stream.options(num_returns="streaming").remote(*args)
            return handle.call.remote(*args)
        except TypeError as exc:  # Ray could not pickle the message
            raise StudioError(
                f"operator {node.name!r} cannot run on Ray: its input {type(value).__name__} is not picklable "
                f"({exc}); messages must be plain data (frozen dataclasses)",
                code="not_picklable",
            ) from None

    async def _run(
        self,
        node: Node,
        where: str,
        handle: Any,
        spec: OperatorSpec,
        value: Any,
        info: CallInfo,
        emit: Any,
        *,
        session: str | None = None,
        pool: tuple[_Pool, int] | None = None,
    ) -> Any:
        import ray
        from ray import exceptions as rex

        died = tuple(
            getattr(rex, n)
            for n in ("RayActorError", "WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OwnerDiedError")
            if hasattr(rex, n)
        )
        ref = self._submit(node, handle, spec, value, info)
        try:
            if not spec.streaming:
                return await ref
            out, produced = None, False
            async for item_ref in ref:
                item = await item_ref
                if await node.op.pass_on(item, emit):
                    out, produced = item, True
            if not produced:  # pragma: no cover - the worker raises first
                raise RuntimeError(f"streaming operator {node.name!r} yielded nothing")
            return out
        except anyio.get_cancelled_exc_class():
            try:
                ray.cancel(ref)  # timeout or a stop button: stop the remote work too
            except Exception:
                pass
            raise
        except rex.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, BaseException) else RuntimeError(str(exc))
            raise cause from None
        except died as exc:
            self._forget(handle, session, pool)
            where_txt = where if handle is None else f"{where} actor"
            raise WorkerDiedError(
                f"operator {node.name!r} lost its Ray worker ({where_txt}) mid-call: {type(exc).__name__}. "
                "The worker is being restarted; send the request again.",
                operator=node.name,
            ) from None

    def _forget(self, handle: Any, session: str | None, pool: tuple[_Pool, int] | None) -> None:
        """Drop a handle to a dead actor; the next call looks it up again by name
        (the restarted actor) or creates a fresh one (if Ray gave up restarting it)."""
        if session is not None:
            self._recovering.add(f"studio_nb/session/{session}")
            if self._sessions_actors.get(session) is handle:
                del self._sessions_actors[session]
        if pool is not None:
            self._recovering.add(self._pool_name(*pool))
            if pool[0].handles.get(pool[1]) is handle:
                del pool[0].handles[pool[1]]

    def __repr__(self) -> str:
        sizes = {name: cfg["size"] for name, cfg in self._pool_config.items()}
        return f"RayEngine(address={self.address!r}, namespace={self.namespace!r}, pools={sizes})"


__all__ = ["DEFAULT_POOL", "PLACEMENTS", "RayEngine", "WorkerDiedError", "placement_of"]
