"""ToolRegistry: named tools, validated arguments, bounded pools, never-raising calls.

The pipeline's tool branch is optional: a tool that fails must degrade the answer, not
fail the turn. So ``call`` turns every tool failure (bad arguments, an exception, a
timeout) into a ToolCall with ``error`` set; only asking for a tool that does not exist
raises, because that is a bug in the caller, not a tool failure.
"""

from __future__ import annotations

import inspect
import pickle
import time
from typing import Any, Callable

from studio_nb.errors import ConfigError, StudioError, ToolError
from studio_nb.services.tools.pools import Backend, ToolTimeout, WorkerPool
from studio_nb.services.tools.spec import ToolCall, ToolSpec

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "object"}


class ToolRegistry:
    """Tools by name, run in an IO pool (``io_workers``) or a CPU pool (``cpu_workers``).

    ``cpu_backend="process"`` runs picklable CPU tools in a process pool (see pools.py
    for why threads are the default).
    """

    def __init__(self, io_workers: int = 8, cpu_workers: int = 2, *, cpu_backend: Backend = "thread") -> None:
        if cpu_backend not in ("thread", "process"):
            raise ConfigError(f"cpu_backend must be 'thread' or 'process', got {cpu_backend!r}")
        self.pools = {"io": WorkerPool("io", io_workers), "cpu": WorkerPool("cpu", cpu_workers)}
        if cpu_backend == "process":
            self.pools["cpu-process"] = WorkerPool("cpu-process", cpu_workers, backend="process")
        self._tools: dict[str, tuple[ToolSpec, Callable[..., Any], Any, WorkerPool]] = {}
        self._wants_user: set[str] = set()  # tools whose fn takes the requesting user (keyword ``user``)

    def __repr__(self) -> str:
        pools = ", ".join(f"{p.name}={p.workers}" for p in self.pools.values())
        return f"ToolRegistry([{', '.join(self._tools)}], {pools})"

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    # -- registration -------------------------------------------------------------

    def register(self, spec: ToolSpec, fn: Callable[..., Any]) -> None:
        """Add a tool; its schema is checked now so a typo fails at start-up, not mid-chat."""
        from studio_nb.services.tools.schema import SchemaProblem, check_schema

        if not spec.name.isidentifier():
            raise ToolError(f"tool name {spec.name!r} must be an identifier (letters, digits, _)")
        if spec.name in self._tools:
            raise ToolError(f"a tool named {spec.name!r} is already registered")
        if spec.pool not in ("io", "cpu"):
            raise ToolError(f"tool {spec.name!r}: pool must be 'io' or 'cpu', got {spec.pool!r}")
        if not spec.timeout_s > 0:
            raise ToolError(f"tool {spec.name!r}: timeout_s must be > 0, got {spec.timeout_s!r}")
        try:
            check_schema(spec.parameters)
        except SchemaProblem as exc:
            raise ToolError(f"tool {spec.name!r} has an invalid parameters schema: {exc}") from exc
        self._tools[spec.name] = (spec, fn, spec.parameters, self._pool_for(spec, fn))
        if _takes_user(fn):
            self._wants_user.add(spec.name)

    def tool(
        self,
        name: str | None = None,
        *,
        description: str | None = None,
        parameters: dict | None = None,
        pool: str = "io",
        side_effects: bool = False,
        timeout_s: float = 10.0,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator form of ``register``; name, description and schema default to the
        function's name, first docstring line and signature."""

        def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
            doc = inspect.getdoc(fn) or ""
            spec = ToolSpec(
                name=name or fn.__name__,
                description=description or (doc.splitlines()[0] if doc else fn.__name__),
                parameters=parameters if parameters is not None else schema_from_signature(fn),
                pool=pool,  # type: ignore[arg-type]
                side_effects=side_effects,
                timeout_s=timeout_s,
            )
            self.register(spec, fn)
            return fn

        return decorate

    def specs(self) -> list[ToolSpec]:
        return [entry[0] for entry in self._tools.values()]

    def spec(self, name: str) -> ToolSpec:
        return self._entry(name)[0]

    # -- calling --------------------------------------------------------------------

    async def call(self, name: str, arguments: dict | None = None, *, user: str | None = None) -> ToolCall:
        """Validate ``arguments``, run the tool in its pool within ``timeout_s``.

        ``user`` (the requesting user) reaches tools whose function takes a keyword-only
        ``user`` (file and knowledge tools: what they may see depends on who asks); it is
        never one of the JSON arguments, so a message cannot choose it.
        Raises ToolError only for an unknown ``name``; every other failure is reported
        in the returned ToolCall's ``error``/``error_code``.
        """
        spec, fn, validator, pool = self._entry(name)
        arguments = {} if arguments is None else arguments
        start = time.perf_counter()

        def done(result: Any = None, error: str | None = None, code: str | None = None) -> ToolCall:
            return ToolCall(name, arguments, result, error, (time.perf_counter() - start) * 1000, code)

        problem = _validation_problem(validator, arguments)
        if problem:
            return done(error=f"tool {name!r} got bad arguments: {problem}", code=ToolError.code)
        kwargs = dict(arguments)
        if name in self._wants_user:
            kwargs["user"] = user
        try:
            return done(await pool.run(fn, kwargs, spec.timeout_s))
        except ToolTimeout as exc:
            return done(error=f"tool {name!r} {exc}", code="timeout")
        except StudioError as exc:
            return done(error=str(exc), code=exc.code)
        except Exception as exc:  # a tool failure, never the turn's failure
            return done(error=f"tool {name!r} failed: {type(exc).__name__}: {exc}", code=ToolError.code)

    def call_sync(self, name: str, arguments: dict | None = None) -> ToolCall:
        """``call`` from synchronous code (a script, a notebook cell: also inside a running loop)."""
        from studio_nb.kernel.sync import run_sync

        return run_sync(lambda: self.call(name, arguments))

    def close(self) -> None:
        for pool in self.pools.values():
            pool.close()

    # -- internals ------------------------------------------------------------------

    def _entry(self, name: str) -> tuple[ToolSpec, Callable[..., Any], Any, WorkerPool]:
        try:
            return self._tools[name]
        except (KeyError, TypeError):
            known = ", ".join(sorted(self._tools)) or "(none registered)"
            raise ToolError(f"unknown tool {name!r}; known tools: {known}") from None

    def _pool_for(self, spec: ToolSpec, fn: Callable[..., Any]) -> WorkerPool:
        if spec.pool == "cpu" and "cpu-process" in self.pools and not inspect.iscoroutinefunction(fn):
            try:
                pickle.dumps(fn)
            except Exception:  # closures, lambdas, bound methods of unpicklable objects
                return self.pools["cpu"]
            return self.pools["cpu-process"]
        return self.pools[spec.pool]


def _takes_user(fn: Callable[..., Any]) -> bool:
    try:
        param = inspect.signature(fn).parameters.get("user")
    except (TypeError, ValueError):
        return False
    return param is not None and param.kind is param.KEYWORD_ONLY


def _validation_problem(schema: dict, arguments: Any) -> str | None:
    from studio_nb.services.tools.schema import problems

    if not isinstance(arguments, dict):
        return f"arguments must be a JSON object, got {type(arguments).__name__}"
    found = sorted(problems(schema, arguments))
    return "; ".join(f"{path or '(arguments)'}: {message}" for path, message in found) or None


def schema_from_signature(fn: Callable[..., Any]) -> dict:
    """A JSON schema for ``fn``'s keyword parameters from their annotations and defaults."""
    props: dict[str, dict] = {}
    required: list[str] = []
    hints = _type_hints(fn)
    for pname, param in inspect.signature(fn).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if pname == "user" and param.kind is param.KEYWORD_ONLY:  # passed by the registry, not the caller
            continue
        jtype = _JSON_TYPES.get(hints.get(pname))  # type: ignore[arg-type]
        props[pname] = {"type": jtype} if jtype else {}
        if param.default is param.empty:
            required.append(pname)
        else:
            props[pname]["default"] = param.default
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _type_hints(fn: Callable[..., Any]) -> dict:
    import typing

    try:
        return typing.get_type_hints(fn)
    except Exception:
        return {}
