"""The Operator: one step of a pipeline, callable on its own from a notebook cell.

A subclass implements ``process(msg)`` as a plain function, a coroutine, or an async
generator (a *streaming* operator: every yielded item is streamed to the caller and the
last one travels on to the next operator). The input and output sockets are read from
the type hints of ``process``, so wiring can be checked before anything runs.

Lifecycle (as in Haystack): ``__init__`` is cheap and takes JSON-able config; each
argument is a live attribute (``op.max_tokens = 64`` is what YAML and a replay see); ``bind(resources)`` hands the operator the shared
resources of the pipeline it runs in (whatever object the application provides: models,
stores); heavy state is loaded in ``warm_up()`` (idempotent) and released in ``close()``.

A streaming operator may declare ``stream_types``: items of those types go only to the
caller's stream (progress, previews, evidence shown early); they never travel along
edges and the wiring check ignores them. The last *other* item travels on.
"""

from __future__ import annotations

import collections
import functools
import inspect
import re
import time
import types
import typing
from dataclasses import dataclass
from typing import Any, AsyncIterator, ClassVar, Iterator

import anyio

from studio_nb.kernel.errors import WiringError
from studio_nb.kernel import registry
from studio_nb.kernel.policy import DEFAULT_POLICY, Policy
from studio_nb.kernel.sync import iterate_sync, run_sync
from studio_nb.kernel.typing_utils import type_name

_ITER_ORIGINS = {
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.Generator,
}


@dataclass(frozen=True)
class Sockets:
    """What ``process`` takes and gives, read from its signature."""

    input_name: str
    input_type: Any
    output_type: Any
    kind: str  # "sync" | "async" | "stream"

    @property
    def streaming(self) -> bool:
        return self.kind == "stream"


@dataclass(frozen=True)
class RunRecord:
    """One direct or pipeline run of an operator, kept in ``op.last`` for inspection."""

    input: Any
    output: Any = None
    error: BaseException | None = None
    duration_ms: float = 0.0
    started_at: float = 0.0
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _without(tp: Any, drop: tuple[type, ...]) -> Any:
    """``tp`` with the members ``drop`` removed from it (when it is a Union)."""
    if not drop:
        return tp
    args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)
    kept = tuple(a for a in args if a not in drop)
    if not kept or kept == args:
        return tp
    return functools.reduce(lambda a, b: a | b, kept)


def _read_sockets(cls: type, fn: Any) -> Sockets:
    sig = inspect.signature(fn)
    params = [p for p in list(sig.parameters.values())[1:] if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(params) != 1:
        raise WiringError(
            f"{cls.__name__}.process must take exactly one message argument after self, "
            f"e.g. `def process(self, msg: str) -> str`; got {sig}"
        )
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # forward references that cannot be resolved: fall back to Any
        hints = {}
    in_type = hints.get(params[0].name, Any)
    out_type = hints.get("return", Any)
    if inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        if inspect.isgeneratorfunction(fn):
            raise WiringError(
                f"{cls.__name__}.process is a plain generator; streaming operators are async generators "
                "(`async def process(self, msg) -> AsyncIterator[T]` with `yield`)"
            )
        kind = "stream"
        if typing.get_origin(out_type) in _ITER_ORIGINS and typing.get_args(out_type):
            out_type = typing.get_args(out_type)[0]
        elif out_type is not Any:
            out_type = Any
    elif inspect.iscoroutinefunction(fn):
        kind = "async"
    else:
        kind = "sync"
    if kind == "stream":
        out_type = _without(out_type, tuple(getattr(cls, "stream_types", ())))
    return Sockets(params[0].name, in_type, out_type, kind)


def _snake(name: str) -> str:
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", s)
    return s.lower().removesuffix("_op") if s.lower() != "_op" else s.lower()


def _wrap_init(cls: type) -> None:
    """Accept ``name=``/``policy=`` and make each init argument a live attribute.

    The attributes are the one source of an operator's settings: ``op.max_tokens = 64``
    in a cell is what ``config``, ``to_yaml()``, the page and a replay see. An argument
    the subclass did not store under its own name is stored for it.
    """
    original = cls.__dict__["__init__"]
    sig = inspect.signature(original)

    @functools.wraps(original)
    def __init__(self, *args: Any, name: str | None = None, policy: Policy | dict | None = None, **kwargs: Any):
        outermost = "_param_names" not in self.__dict__
        if outermost:
            bound = sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            given: dict[str, Any] = {}
            for pname, value in list(bound.arguments.items())[1:]:
                kind = sig.parameters[pname].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    given.update(value)
                elif kind is not inspect.Parameter.VAR_POSITIONAL:
                    given[pname] = value
            self._param_names = tuple(given)
            Operator.__init__(self, name=name, policy=policy)
        original(self, *args, **kwargs)
        if outermost:
            for pname, value in given.items():
                if not hasattr(self, pname):
                    setattr(self, pname, value)

    cls.__init__ = __init__


class Operator:
    """Base class of every pipeline step. See the module docstring for the contract."""

    #: run a synchronous ``process`` in a worker thread (for CPU- or IO-heavy work)
    blocking: ClassVar[bool] = False
    #: safe to retry after a failure (no side effects that a retry would repeat)
    idempotent: ClassVar[bool] = True
    #: how many recent runs ``op.last`` keeps
    history_size: ClassVar[int] = 8
    #: item types a streaming operator yields only for the caller's stream (see module doc)
    stream_types: ClassVar[tuple[type, ...]] = ()
    sockets: ClassVar[Sockets]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "process" in cls.__dict__:
            cls.sockets = _read_sockets(cls, cls.__dict__["process"])
        if "__init__" in cls.__dict__:
            _wrap_init(cls)
        if getattr(cls, "sockets", None) is not None and not inspect.isabstract(cls):
            registry.register(cls)

    def __init__(self, *, name: str | None = None, policy: Policy | dict | None = None) -> None:
        if "_param_names" not in self.__dict__:
            self._param_names = ()
        if getattr(type(self), "sockets", None) is None:
            raise WiringError(f"{type(self).__name__} does not define process(self, msg)")
        self.name = name or _snake(type(self).__name__)
        self.policy = Policy.from_dict(policy) if isinstance(policy, dict) else (policy or DEFAULT_POLICY)
        self.last: collections.deque[RunRecord] = collections.deque(maxlen=self.history_size)
        self.resources: Any = None
        self._warm = False
        self._auto_named = name is None

    # ----------------------------------------------------------------- lifecycle
    def bind(self, resources: Any) -> None:
        """Receive the shared resources of the pipeline this operator runs in.

        The one way an operator gets heavy shared things (a model, an index, a store):
        the pipeline calls it before ``warm_up`` with its resources object; on Ray each
        worker calls it with its own copy, built from the same factory. Tests pass a fake.
        Subclasses that need more than ``self.resources`` override it.
        """
        self.resources = resources

    def need(self, name: str) -> Any:
        """``self.resources.<name>``, or an error that says how to provide it."""
        if self.resources is None or not hasattr(self.resources, name):
            raise RuntimeError(
                f"{type(self).__name__} {self.name!r} needs resources.{name}: run it inside its pipeline "
                f"(pipe[{self.name!r}]) or call op.bind(resources) with an object that has .{name}"
            )
        return getattr(self.resources, name)

    def warm_up(self) -> None:
        """Load heavy state. Subclasses override; must be safe to call twice."""

    def close(self) -> None:
        """Release what ``warm_up`` loaded."""

    def ensure_warm(self) -> None:
        """``warm_up`` once: the one place an operator's warm state changes (with ``release``)."""
        if not self._warm:
            self.warm_up()
            self._warm = True

    def release(self) -> None:
        """``close`` and forget the warm state, so the next use warms up again."""
        self.close()
        self._warm = False

    @property
    def is_warm(self) -> bool:
        """Whether ``warm_up`` has run (and ``release`` has not since)."""
        return self._warm

    def skip_reason(self, msg: Any) -> str | None:
        """Return a reason to skip this operator for ``msg`` (e.g. chit-chat needs no RAG)."""
        return None

    # ----------------------------------------------------------------- introspection
    @property
    def config(self) -> dict[str, Any]:
        """The init arguments' current values, read from the live attributes (what YAML,
        the page and a replay see)."""
        return {pname: getattr(self, pname) for pname in self._param_names}

    @property
    def input_type(self) -> Any:
        return self.sockets.input_type

    @property
    def output_type(self) -> Any:
        return self.sockets.output_type

    @property
    def streaming(self) -> bool:
        return self.sockets.streaming

    def with_policy(self, **changes: Any) -> "Operator":
        """Return self with the policy fields changed, e.g. ``op.with_policy(max_retries=2)``."""
        self.policy = self.policy.replace(**changes)
        return self

    def __repr__(self) -> str:
        s = self.sockets
        lines = [
            f"{type(self).__name__}(name={self.name!r})",
            f"  in:  {s.input_name}: {type_name(s.input_type)}",
            f"  out: {type_name(s.output_type)}{' (stream)' if s.streaming else ''}",
        ]
        config = self.config
        if config:
            lines.append(f"  config: {config}")
        if not self.policy.is_default:
            lines.append(f"  policy: {self.policy.to_dict()}")
        if self.last:
            r = self.last[-1]
            state = "ok" if r.ok else f"error {type(r.error).__name__}"
            lines.append(f"  last: {state} in {r.duration_ms:.2f} ms")
        return "\n".join(lines)

    # ----------------------------------------------------------------- running
    async def acall(self, msg: Any) -> Any:
        """Run ``process`` once (async). For a streaming operator, return its last item."""
        return await self.invoke(msg)

    async def astream(self, msg: Any) -> AsyncIterator[Any]:
        """Yield a streaming operator's items as they come (one item for the others)."""
        if not self.streaming:
            yield await self.invoke(msg)
            return
        await self._warm_in_thread()
        started, t0, item = time.time(), time.perf_counter(), None
        try:
            async for item in self.process(msg):
                yield item
        except BaseException as exc:
            self._finish(msg, item, exc, started, t0, None)
            raise
        self._finish(msg, item, None, started, t0, None)

    def stream(self, msg: Any) -> Iterator[Any]:
        """Synchronous ``astream``; works inside Jupyter's running loop."""
        return iterate_sync(lambda: self.astream(msg))

    def __call__(self, msg: Any) -> Any:
        """Run the operator directly: ``Upper()("hi") == "HI"``, in a script or a notebook."""
        if self.sockets.kind == "sync" and not self.blocking:
            self.ensure_warm()
            started, t0 = time.time(), time.perf_counter()
            try:
                out = self.process(msg)
            except Exception as exc:
                self._finish(msg, None, exc, started, t0, None)
                raise
            self._finish(msg, out, None, started, t0, None)
            return out
        return run_sync(lambda: self.acall(msg))

    async def _warm_in_thread(self) -> None:
        if not self._warm:
            await anyio.to_thread.run_sync(self.ensure_warm)

    def _finish(self, msg: Any, out: Any, exc: BaseException | None, started: float, t0: float, rid: str | None) -> None:
        self.last.append(RunRecord(msg, out, exc, (time.perf_counter() - t0) * 1e3, started, rid))

    async def invoke(self, msg: Any, emit: Any = None, request_id: str | None = None) -> Any:
        """Run ``process`` once and record it; the engine's entry point.

        ``emit(item)`` (async) receives each item of a streaming operator as it is
        produced; the return value is the last item.
        """
        if not self._warm:
            await self._warm_in_thread()
        started, t0, out = time.time(), time.perf_counter(), None
        try:
            kind = self.sockets.kind
            if kind == "sync":
                out = await anyio.to_thread.run_sync(self.process, msg) if self.blocking else self.process(msg)
            elif kind == "async":
                out = await self.process(msg)
            else:
                produced = False
                async for item in self.process(msg):
                    if await self.pass_on(item, emit):
                        out, produced = item, True
                if not produced:
                    raise RuntimeError(f"streaming operator {self.name!r} yielded nothing")
        except BaseException as exc:
            self._finish(msg, out, exc, started, t0, request_id)
            raise
        self._finish(msg, out, None, started, t0, request_id)
        return out

    async def pass_on(self, item: Any, emit: Any) -> bool:
        """Hand one streamed item to the caller (``emit``); True when it may travel on.

        Items of ``stream_types`` go to the caller only; without ``stream_types`` every
        item is streamed and the last one travels on. Engines call this for every item a
        streaming operator yields, wherever it ran.
        """
        stream_only = self.stream_types
        if stream_only and isinstance(item, stream_only):
            if emit is not None:
                await emit(item)
            return False
        if emit is not None and not stream_only:
            await emit(item)
        return True

    def process(self, msg: Any) -> Any:  # pragma: no cover - replaced by subclasses
        raise NotImplementedError


Operator.sockets = None  # type: ignore[assignment]  # the base class has no sockets
