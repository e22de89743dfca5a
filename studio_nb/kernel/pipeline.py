"""Pipeline: a named graph of operators, checked when wired, run by an engine.

    p = Pipeline("demo")
    p.add_source(up)          # where a request enters
    p.connect(up, ex)         # types are checked here, not at run time
    p.run("hi")               # sync (also in Jupyter); arun / stream / astream

Routing is by type: a value leaves a node along every edge whose target accepts it. An
operator that returns ``Answer | Retry`` therefore sends answers forward and retries
back along a feedback edge, and the wiring check can prove each alternative has a taker.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, AsyncIterator, Callable, Iterator

from studio_nb.kernel.errors import ConfigError, WiringError
from studio_nb.kernel.context import RequestContext
from studio_nb.kernel.events import EventHub, StepEvent
from studio_nb.kernel.graph import Edge, Node
from studio_nb.kernel.group import ParallelGroup
from studio_nb.kernel.operator import Operator
from studio_nb.kernel.sync import iterate_sync, run_sync
from studio_nb.kernel.typing_utils import fits, type_name, unmatched

_DONE = object()


class Pipeline:
    def __init__(self, name: str = "pipeline", engine: Any = None) -> None:
        self.name = name
        self._engine = engine
        self.resources: Any = None  # what operators share; see use_resources
        self.resources_factory: Callable[[], Any] | None = None
        self.nodes: dict[str, Node] = {}  # every node, including group members
        self.edges: list[Edge] = []
        self.source: Node | None = None
        self.events = EventHub()
        self._validated = False

    # ------------------------------------------------------------------ building
    @property
    def engine(self) -> Any:
        if self._engine is None:
            from studio_nb.kernel.engine import LocalEngine

            self._engine = LocalEngine()
        return self._engine

    @engine.setter
    def engine(self, engine: Any) -> None:
        self._engine = engine

    def _claim_name(self, op: Operator | ParallelGroup) -> str:
        existing = self.nodes.get(op.name)
        if existing is None:
            return op.name
        if getattr(op, "_auto_named", False):
            i = 2
            while f"{op.name}_{i}" in self.nodes:
                i += 1
            op.name = f"{op.name}_{i}"
            return op.name
        raise WiringError(f"pipeline {self.name!r} already has a node named {op.name!r}; pass name=... to rename")

    def add(self, op: Operator | ParallelGroup) -> Node:
        """Add an operator or a ParallelGroup (connect() adds them implicitly)."""
        for node in self.nodes.values():
            if node.op is op:
                return node
        if isinstance(op, ParallelGroup):
            node = Node(self._claim_name(op), op, kind="group")
            self.nodes[node.name] = node
            for branch in op.branches:
                member = Node(self._claim_name(branch), branch, kind="branch", group=node.name)
                self.nodes[member.name] = member
                node.members.append(member)
            if op.join is not None:
                node.join = Node(self._claim_name(op.join), op.join, kind="join", group=node.name)
                self.nodes[node.join.name] = node.join
        elif isinstance(op, Operator):
            node = Node(self._claim_name(op), op)
            self.nodes[node.name] = node
        else:
            raise WiringError(f"can only add Operator or ParallelGroup objects, got {type(op).__name__}")
        if self.resources is not None:
            for o in self._ops_of(op):
                o.bind(self.resources)
        self._validated = False
        return node

    @staticmethod
    def _ops_of(op: Any) -> list[Operator]:
        if isinstance(op, ParallelGroup):
            return [*op.branches, *([op.join] if op.join is not None else [])]
        return [op]

    def use_resources(self, factory: Callable[[], Any]) -> "Pipeline":
        """Give every operator the object ``factory()`` returns (via ``Operator.bind``).

        ``factory`` must be cheap (heavy parts load on first use) and, for the Ray engine,
        picklable (a module-level function or a ``functools.partial`` of one): each Ray
        worker calls it to build its own copy. The kernel never looks inside the object.
        """
        self.resources_factory = factory
        self.resources = factory()
        for op in self.operators():
            op.bind(self.resources)
        return self

    def add_source(self, op: Operator | ParallelGroup) -> Node:
        """Add ``op`` as the entry point of every request."""
        node = self.add(op)
        if self.source is not None and self.source is not node:
            raise WiringError(f"pipeline {self.name!r} already has source {self.source.name!r}")
        self.source = node
        self._validated = False
        return node

    def _node(self, ref: Operator | ParallelGroup | str) -> Node:
        if isinstance(ref, str):
            if ref not in self.nodes:
                raise WiringError(f"no node named {ref!r} in pipeline {self.name!r}; nodes: {sorted(self.nodes)}")
            return self.nodes[ref]
        return self.add(ref)

    def connect(
        self,
        src: Operator | ParallelGroup | str,
        dst: Operator | ParallelGroup | str,
        *,
        feedback: bool = False,
        max_loops: int | None = None,
    ) -> Edge:
        """Wire ``src``'s output to ``dst``'s input; a mismatch says what would fit."""
        a, b = self._node(src), self._node(dst)
        for n in (a, b):
            if not n.top_level:
                raise WiringError(
                    f"{n.name!r} is a {n.kind} of group {n.group!r}; connect the group {n.group!r} instead"
                )
        if not fits(a.output_type, b.input_type):
            raise WiringError(self._mismatch_message(a, b))
        if feedback and (max_loops is None or max_loops < 1):
            raise WiringError(
                f"feedback edge {a.name} -> {b.name} needs a loop bound: connect(..., feedback=True, max_loops=2)"
            )
        if not feedback and max_loops is not None:
            raise WiringError("max_loops only applies to feedback edges (feedback=True)")
        if any(e.src is a and e.dst is b for e in self.edges):
            raise WiringError(f"{a.name} -> {b.name} is already connected")
        edge = Edge(a, b, feedback=feedback, max_loops=max_loops)
        self.edges.append(edge)
        a.out_edges.append(edge)
        b.in_edges.append(edge)
        self._validated = False
        return edge

    def _mismatch_message(self, a: Node, b: Node) -> str:
        out_t, in_t = a.output_type, b.input_type
        takers = [n for n in self.nodes.values() if n.top_level and n is not a and fits(out_t, n.input_type)]
        givers = [n for n in self.nodes.values() if n.top_level and n is not b and fits(n.output_type, in_t)]
        lines = [
            f"cannot connect {a.name} -> {b.name}: {a.name} outputs {type_name(out_t)} "
            f"but {b.name} takes {type_name(in_t)}.",
            "Sockets:",
        ]
        for n in self.nodes.values():
            if n.top_level:
                taken = "taken" if n.in_edges or n is self.source else "free"
                lines.append(
                    f"  {n.name}: in {type_name(n.input_type)} ({taken}), out {type_name(n.output_type)}"
                )
        lines.append(
            f"Nodes that accept {type_name(out_t)}: {', '.join(n.name for n in takers) or 'none'}; "
            f"nodes whose output fits {b.name}: {', '.join(n.name for n in givers) or 'none'}."
        )
        return "\n".join(lines)

    # ------------------------------------------------------------------ inspection
    def __getitem__(self, name: str) -> Any:
        """The live operator (or group) called ``name``."""
        if name not in self.nodes:
            raise KeyError(f"no operator named {name!r}; operators: {sorted(self.nodes)}")
        return self.nodes[name].op

    def __contains__(self, name: str) -> bool:
        return name in self.nodes

    def operators(self) -> list[Operator]:
        return [n.op for n in self.nodes.values() if isinstance(n.op, Operator)]

    def __repr__(self) -> str:
        lines = [f"Pipeline({self.name!r}, engine={type(self.engine).__name__})", "Nodes:"]
        for n in self.nodes.values():
            if n.kind == "group":
                parts = ", ".join(m.name for m in n.members)
                join = f" -> {n.join.name}" if n.join else ""
                lines.append(f"  {n.name}: ParallelGroup[{parts}]{join}")
                continue
            flags = []
            if n is self.source:
                flags.append("source")
            if not n.enabled:
                flags.append("disabled")
            if n.group:
                flags.append(f"{n.kind} of {n.group}")
            extra = f" [{', '.join(flags)}]" if flags else ""
            lines.append(
                f"  {n.name}: {type(n.op).__name__} ({type_name(n.input_type)} -> {type_name(n.output_type)}){extra}"
            )
        lines.append("Edges:")
        lines.extend(f"  {e.describe()}" for e in self.edges)
        return "\n".join(lines)

    # ------------------------------------------------------------------ validation
    def problems(self) -> list[str]:
        """Everything wrong with the graph, in words (empty when it can run)."""
        out: list[str] = []
        if self.source is None:
            return ["no source: call add_source(op) for the operator that receives requests"]
        top = [n for n in self.nodes.values() if n.top_level]
        forward = {n.name: [e.dst for e in n.out_edges if not e.feedback] for n in top}
        seen, stack = set(), [self.source]
        while stack:
            n = stack.pop()
            if n.name in seen:
                continue
            seen.add(n.name)
            stack.extend(forward[n.name])
        for n in top:
            if n is not self.source and not any(not e.feedback for e in n.in_edges):
                out.append(f"{n.name}: input not connected (no edge leads to it; connect an operator to it)")
            elif n.name not in seen:
                out.append(f"{n.name}: unreachable from source {self.source.name!r}")
        cycle = _find_cycle(top, forward)
        if cycle:
            out.append(
                f"unbounded cycle {' -> '.join(cycle)}: mark the back edge with connect(..., feedback=True, max_loops=N)"
            )
        for n in top:
            if n.out_edges:
                for m in unmatched(n.output_type, [e.dst.input_type for e in n.out_edges]):
                    out.append(f"{n.name} can output {type_name(m)} but none of its edges accepts it")
        return out

    def validate(self) -> "Pipeline":
        """Raise WiringError listing every problem; returns self so it chains."""
        problems = self.problems()
        if problems:
            raise WiringError(f"pipeline {self.name!r} is not runnable:\n  - " + "\n  - ".join(problems))
        self._validated = True
        return self

    # ------------------------------------------------------------------ hot-plug
    def set_enabled(self, name: str, enabled: bool) -> None:
        """Switch a node off or on in a live pipeline (A/B, degraded mode).

        A disabled group branch is skipped (its result is missing); a disabled chain
        operator passes its input through, which is only allowed when the input type
        fits every downstream socket.
        """
        self.check_toggle(name, enabled)
        self._node(name).enabled = enabled

    def check_toggle(self, name: str, enabled: bool = False) -> None:
        """Raise WiringError if ``name`` cannot be switched to ``enabled`` (also checks
        per-request switches: ``RequestContext.disabled`` must only name such nodes)."""
        node = self._node(name)
        if node.kind == "join":
            raise WiringError(f"{name!r} joins group {node.group!r}; disable the group's branches instead")
        if not enabled and node.top_level:
            bad = [e.dst.name for e in node.out_edges if not fits(node.input_type, e.dst.input_type)]
            if bad or node is self.source:
                where = "it is the source" if node is self.source else f"{', '.join(bad)} cannot take its input"
                raise WiringError(f"cannot disable {name!r}: {where} ({type_name(node.input_type)})")

    # ------------------------------------------------------------------ per-request variants
    def override(self, name: str, *, params: dict[str, Any] | None = None,
                 operator: "Operator | type | str | None" = None) -> Operator:
        """An operator to stand in for node ``name`` in some requests only
        (``RequestContext.overrides``): the node's own class with ``params`` changed, or
        ``operator`` (an instance, a class or a registered name) — checked to fit the node's
        sockets, given the node's policy unless it has its own, and bound to the resources.
        The pipeline itself is not changed.
        """
        from studio_nb.kernel import registry

        node = self._node(name)
        if node.is_group:
            members = ", ".join(m.name for m in node.members)
            raise WiringError(f"{name!r} is a ParallelGroup; change its branches ({members}) instead")
        base: Operator = node.op
        if isinstance(operator, Operator):
            if params:
                raise WiringError(f"{name!r}: pass params or an operator instance, not both")
            op = operator
            if op.policy.is_default:
                op.policy = base.policy
        else:
            cls = registry.get(operator) if isinstance(operator, str) else (operator or type(base))
            takes = [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "name", "policy")]
            # another class keeps the node's settings it understands (a subclass: all of them)
            config = {k: v for k, v in base.config.items() if cls is type(base) or k in takes}
            config.update(params or {})
            try:
                op = cls(**config, name=name, policy=base.policy)
            except TypeError as exc:
                raise ConfigError(f"bad params for {cls.__name__} at {name!r}: {exc}; it takes: "
                                  f"{', '.join(takes) or 'no params'}") from None
        problem = self._swap_problem(node, op)
        if problem:
            raise WiringError(problem)
        if self.resources is not None and op.resources is None:
            op.bind(self.resources)
        return op

    def _swap_problem(self, node: Node, op: Operator) -> str | None:
        """Why ``op`` cannot stand in for ``node`` (None when it fits)."""
        if unmatched(node.input_type, [op.input_type]):
            return (f"{type(op).__name__} cannot stand in for {node.name!r}: it takes {type_name(op.input_type)} "
                    f"but {node.name!r} receives {type_name(node.input_type)}")
        edges = node.out_edges
        if node.kind == "join":
            edges = self.nodes[node.group].out_edges
        missing = unmatched(op.output_type, [e.dst.input_type for e in edges]) if edges else []
        if missing:
            takes = ", ".join(f"{e.dst.name} ({type_name(e.dst.input_type)})" for e in edges)
            return (f"{type(op).__name__} cannot stand in for {node.name!r}: it can output "
                    f"{', '.join(type_name(m) for m in missing)}, which no edge accepts; edges: {takes}")
        return None

    def alternatives(self, name: str) -> list[str]:
        """Registered operator classes (by name) that could stand in for node ``name``: typed
        sockets that fit it (an untyped ``Any -> Any`` operator fits anything, so says nothing)."""
        from studio_nb.kernel import registry

        node = self._node(name)
        if node.is_group:
            return []
        out = []
        for cls_name in registry.names():
            cls = registry.get(cls_name)
            sockets = getattr(cls, "sockets", None)
            if cls is type(node.op) or sockets is None or Any in (sockets.input_type, sockets.output_type):
                continue
            probe = object.__new__(cls)  # sockets are class-level: no need to build one
            if self._swap_problem(node, probe) is None:
                out.append(cls_name)
        return out

    def disable(self, name: str) -> None:
        self.set_enabled(name, False)

    def enable(self, name: str) -> None:
        self.set_enabled(name, True)

    # ------------------------------------------------------------------ lifecycle
    def warm_up(self, progress: bool = False) -> None:
        ops = self.operators()
        if progress:
            from tqdm.auto import tqdm

            ops = tqdm(ops, desc=f"warming up {self.name}", unit="op")
        for op in ops:
            if hasattr(ops, "set_postfix_str"):
                ops.set_postfix_str(op.name)
            op.ensure_warm()
        engine_warm_up = getattr(self.engine, "warm_up", None)
        if engine_warm_up is not None:  # e.g. Ray: load models in the pool workers now
            engine_warm_up(self)

    def close(self) -> None:
        """Close every operator, then the shared resources (if they have ``close``)."""
        for op in self.operators():
            op.release()
        close = getattr(self.resources, "close", None)
        if callable(close):
            close()

    def subscribe(self, callback: Callable[[StepEvent], Any]) -> Callable[[], None]:
        """Receive every StepEvent of this pipeline; returns an unsubscribe function."""
        return self.events.subscribe(callback)

    # ------------------------------------------------------------------ running
    def _prepare(self, context: RequestContext | None, kw: dict[str, Any]) -> RequestContext:
        if not self._validated:
            self.validate()
        if context is None:
            return RequestContext(**kw)
        for key, value in kw.items():
            setattr(context, key, value)
        return context

    @staticmethod
    def _result(outputs: dict[str, Any]) -> Any:
        if len(outputs) == 1:
            return next(iter(outputs.values()))
        return dict(outputs) if outputs else None

    async def arun(self, value: Any, *, context: RequestContext | None = None, **kw: Any) -> Any:
        """Run one request. Keyword args fill a RequestContext (session_id, priority, ...).

        Returns the output of the terminal node that produced one (a dict by node name
        when several did).
        """
        ctx = self._prepare(context, kw)
        return self._result(await self.engine.execute(self, value, ctx))

    def run(self, value: Any, **kw: Any) -> Any:
        """Synchronous ``arun``; usable in scripts and inside Jupyter's running loop."""
        return run_sync(lambda: self.arun(value, **kw))

    async def astream(
        self, value: Any, *, events: bool = False, context: RequestContext | None = None, **kw: Any
    ) -> AsyncIterator[Any]:
        """Yield streaming operators' items as produced, then the final result (unless the
        result is the last streamed item itself: it is not repeated).

        With ``events=True`` the StepEvents of this request are interleaved. Closing the
        iterator (or cancelling the task iterating it) cancels the request, down to the
        operator that is running.
        """
        ctx = self._prepare(context, kw)
        queue: asyncio.Queue = asyncio.Queue()

        streamed: list[Any] = [None, _DONE]  # the node that emitted last, and its item

        async def emit(node: str, item: Any) -> None:
            streamed[:] = [node, item]
            queue.put_nowait(item)

        ctx.emit = emit
        if events:
            user_cb = ctx.on_event

            def on_event(ev: StepEvent) -> None:
                queue.put_nowait(ev)
                if user_cb is not None:
                    user_cb(ev)

            ctx.on_event = on_event
        task = asyncio.ensure_future(self.engine.execute(self, value, ctx))
        task.add_done_callback(lambda _t: queue.put_nowait(_DONE))
        try:
            while (item := await queue.get()) is not _DONE:
                yield item
            outputs = task.result()
            result = self._result(outputs)
            terminal_streamed = streamed[0] in outputs  # the result came from the streaming node itself
            if not (terminal_streamed and _same(result, streamed[1])):  # so it was streamed already
                yield result
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait([task])

    def stream(self, value: Any, **kw: Any) -> Iterator[Any]:
        """Synchronous ``astream``; leaving the loop early cancels the request."""
        return iterate_sync(lambda: self.astream(value, **kw))

    def replay_context(self, trace: Any, *, from_: str | tuple[str, int] | None = None,
                       overrides: dict[str, Operator] | None = None, changed: Any = (),
                       inputs: dict | None = None, rebind: Callable[[Any], Any] | None = None,
                       context: RequestContext | None = None, **kw: Any) -> tuple[Any, RequestContext]:
        """The message and context to run a recorded request (``trace``) again: from node
        ``from_``, with ``overrides`` standing in for nodes (they and ``changed`` nodes run
        for real), reusing everything upstream (kernel/replay.py). Errors name the
        operators that ran. Returns (message, context) for ``arun``/``astream(message,
        context=...)``."""
        from studio_nb.kernel.replay import ReplayPlan

        ctx = self._prepare(context, kw)
        ctx.overrides = {**ctx.overrides, **(overrides or {})}
        ctx.replay = ReplayPlan.from_trace(self, trace, from_=from_, changed={*(overrides or {}), *changed},
                                           inputs=inputs, rebind=rebind)
        return ctx.replay.source_input(self.source.name), ctx

    async def areplay(self, trace: Any, **kw: Any) -> Any:
        """Run a recorded request again (see ``replay_context``); returns its result."""
        value, ctx = self.replay_context(trace, **kw)
        return self._result(await self.engine.execute(self, value, ctx))

    def replay(self, trace: Any, **kw: Any) -> Any:
        """Synchronous ``areplay``."""
        return run_sync(lambda: self.areplay(trace, **kw))

    # ------------------------------------------------------------------ persistence & drawing
    def to_dict(self) -> dict[str, Any]:
        from studio_nb.kernel.serialization import pipeline_to_dict

        return pipeline_to_dict(self)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], engine: Any = None) -> "Pipeline":
        from studio_nb.kernel.serialization import pipeline_from_dict

        return pipeline_from_dict(data, engine=engine, pipeline_class=cls)

    @classmethod
    def from_yaml(cls, text: str, engine: Any = None) -> "Pipeline":
        """Build a pipeline from YAML text (``to_yaml()``'s format) or a path to such a file."""
        import os

        import yaml

        if "\n" not in text and os.path.exists(text):
            with open(text, encoding="utf-8") as fh:
                text = fh.read()
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            raise WiringError("pipeline YAML must be a mapping with 'nodes' and 'edges'")
        return cls.from_dict(data, engine=engine)

    def graph(self) -> dict[str, Any]:
        """Nodes (with layout positions and live stats) and edges, for UIs."""
        from studio_nb.kernel.draw import graph_dict

        return graph_dict(self)

    def draw(self) -> Any:
        """An offline drawing: ``.svg``, ``.mermaid``, and rich display in notebooks."""
        from studio_nb.kernel.draw import Drawing

        return Drawing(self)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        drawing = self.draw()
        return {"image/svg+xml": drawing.svg, "text/plain": repr(self)}


def _same(a: Any, b: Any) -> bool:
    """Whether the final result merely repeats the last streamed item (equal values count:
    on Ray both are unpickled copies)."""
    if a is b:
        return True
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:  # values that cannot be compared (arrays) are simply not deduplicated
        return False


def _find_cycle(top: list[Node], forward: dict[str, list[Node]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for nxt in forward[name]:
            if state.get(nxt.name) == 1:
                return path[path.index(nxt.name) :] + [nxt.name]
            if nxt.name not in state:
                found = visit(nxt.name)
                if found:
                    return found
        state[name] = 2
        path.pop()
        return None

    for n in top:
        if n.name not in state:
            found = visit(n.name)
            if found:
                return found
    return None


__all__ = ["Pipeline"]
