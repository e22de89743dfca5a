"""What runs inside Ray workers: operators rebuilt from their config, called one message at a time.

Live operator objects never cross the wire (they may hold a llama.cpp model, an index or
a socket). The driver sends an ``OperatorSpec`` instead: the node's registry entry
(``{"name", "operator", "params"}``, plain JSON) from which the worker rebuilds its own
instance with ``build_operator`` and keeps it, warm, for the next call. Messages are
frozen dataclasses and pickle as they are.

Nothing here imports Ray: the engine wraps ``OperatorHost`` and the two task functions
with ``ray.remote`` when it starts, so this module is importable (and testable) anywhere.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import pickle
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterator

from studio_nb.kernel.errors import ConfigError, StudioError
from studio_nb.kernel.context import RequestContext, _current
from studio_nb.kernel.operator import Operator
from studio_nb.kernel.serialization import build_operator


@dataclass(frozen=True)
class OperatorSpec:
    """How a worker rebuilds one node's operator: its registry entry, plus the class
    itself only when the class cannot be imported by name (defined in ``__main__`` or a
    notebook cell; cloudpickle then ships it by value), plus the pipeline's resources
    factory: the worker builds its own resources with it (once) and binds the operator."""

    key: str
    entry: dict[str, Any]
    streaming: bool
    cls: type | None = None
    resources: Any = None  # the pipeline's resources_factory (picklable), or None

    def build(self) -> Operator:
        if self.cls is None:
            op = build_operator(self.entry)
        else:
            op = self.cls(**self.entry.get("params", {}), name=self.entry["name"])
        if self.resources is not None:
            op.bind(worker_resources(self.resources))
        return op


_resources: dict[bytes, Any] = {}


def worker_resources(factory: Any) -> Any:
    """This process's resources from ``factory`` (built once per distinct factory)."""
    import cloudpickle

    key = cloudpickle.dumps(factory)
    if key not in _resources:
        _resources[key] = factory()
    return _resources[key]


def spec_for(name: str, op: Operator, resources: Any = None) -> OperatorSpec:
    """The spec of node ``name`` (driver side); its config must be JSON-able."""
    cls = type(op)
    params = op.config
    try:
        blob = json.dumps(params, sort_keys=True)
    except TypeError as exc:
        raise ConfigError(
            f"operator {name!r} cannot run on Ray: its config is not JSON-able ({exc}); "
            "pass plain values to __init__ and build objects in warm_up()"
        ) from None
    entry: dict[str, Any] = {"name": name, "operator": f"{cls.__module__}:{cls.__qualname__}"}
    if params:
        entry["params"] = params
    by_value = cls.__module__ == "__main__" or "<locals>" in cls.__qualname__
    return OperatorSpec(
        f"{entry['operator']}|{name}|{blob}", entry, op.streaming, cls if by_value else None, resources
    )


@dataclass(frozen=True)
class CallInfo:
    """The picklable part of a RequestContext, so ``current_request()`` works in a worker."""

    request_id: str
    session_id: str | None = None
    priority: int = 0
    user: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, ctx: RequestContext) -> "CallInfo":
        return cls(ctx.request_id, ctx.session_id, ctx.priority, ctx.user, dict(ctx.metadata))

    def context(self) -> RequestContext:
        return RequestContext(
            request_id=self.request_id,
            session_id=self.session_id,
            priority=self.priority,
            user=self.user,
            metadata=dict(self.metadata),
        )


class OperatorCache:
    """Operators built in this worker, by spec key; bounded (least recently used leaves and is closed)."""

    def __init__(self, maxsize: int = 32) -> None:
        self.maxsize = maxsize
        self._ops: collections.OrderedDict[str, Operator] = collections.OrderedDict()

    def get(self, spec: OperatorSpec) -> Operator:
        op = self._ops.get(spec.key)
        if op is None:
            op = self._ops[spec.key] = spec.build()
            while len(self._ops) > self.maxsize:
                _, old = self._ops.popitem(last=False)
                old.close()
        else:
            self._ops.move_to_end(spec.key)
        return op

    def names(self) -> list[str]:
        return [op.name for op in self._ops.values()]

    def close(self) -> None:
        for op in self._ops.values():
            op.close()
        self._ops.clear()


def portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else an equivalent that does (codes are kept)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        if isinstance(exc, StudioError):
            return StudioError(str(exc), code=exc.code)
        return RuntimeError(f"{type(exc).__name__}: {exc}")


async def run_call(op: Operator, value: Any, info: CallInfo) -> Any:
    _current.set(info.context())
    try:
        return await op.invoke(value, None, info.request_id)
    except Exception as exc:
        raise portable(exc) from None


async def run_stream(op: Operator, value: Any, info: CallInfo) -> AsyncIterator[Any]:
    _current.set(info.context())
    produced = False
    try:
        async for item in op.astream(value):
            produced = True
            yield item
    except Exception as exc:
        raise portable(exc) from None
    if not produced:
        raise RuntimeError(f"streaming operator {op.name!r} yielded nothing")


class OperatorHost:
    """An actor body: LLM/retriever pool workers and per-session actors are all this.

    Methods are async so Ray runs them on the actor's event loop: ``max_concurrency``
    bounds how many messages it serves at once (1 for an LLM worker: one generation at a
    time), and ``ray.cancel`` reaches a running call as asyncio cancellation.
    """

    def __init__(self, role: str) -> None:
        self.role = role
        self.ops = OperatorCache()

    async def call(self, spec: OperatorSpec, value: Any, info: CallInfo) -> Any:
        return await run_call(self.ops.get(spec), value, info)

    async def stream(self, spec: OperatorSpec, value: Any, info: CallInfo) -> AsyncIterator[Any]:
        async for item in run_stream(self.ops.get(spec), value, info):
            yield item

    async def warm_up(self, spec: OperatorSpec) -> str:
        op = self.ops.get(spec)
        await asyncio.to_thread(op.ensure_warm)
        return op.name

    def describe(self) -> dict[str, Any]:
        import ray

        return {
            "role": self.role,
            "pid": os.getpid(),
            "node_id": ray.get_runtime_context().get_node_id(),
            "operators": self.ops.names(),
        }


# ---------------------------------------------------------------- stateless Ray tasks
_task_ops = OperatorCache(maxsize=16)
_task_loop: asyncio.AbstractEventLoop | None = None


def _loop() -> asyncio.AbstractEventLoop:
    """One loop per worker process, so loop-bound operator state survives between tasks."""
    global _task_loop
    if _task_loop is None or _task_loop.is_closed():
        _task_loop = asyncio.new_event_loop()
    return _task_loop


def task_call(spec: OperatorSpec, value: Any, info: CallInfo) -> Any:
    return _loop().run_until_complete(run_call(_task_ops.get(spec), value, info))


def task_stream(spec: OperatorSpec, value: Any, info: CallInfo) -> Iterator[Any]:
    loop = _loop()
    agen = run_stream(_task_ops.get(spec), value, info).__aiter__()
    try:
        while True:
            try:
                item = loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
            yield item
    finally:
        loop.run_until_complete(agen.aclose())
