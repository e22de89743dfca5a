"""Per-operator run policies: retries, timeout, back-pressure, optional branches.

A policy belongs to a node of a pipeline, not to the operator's code, so the same
operator can be strict in one pipeline and best-effort in another, and YAML can change
it without touching Python.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from studio_nb.kernel.errors import ConfigError


@dataclass(frozen=True)
class Policy:
    """How the engine runs one operator.

    - ``max_retries``: extra attempts after a failure, with exponential backoff starting at
      ``backoff_ms``; only for idempotent operators (``Operator.idempotent``).
    - ``timeout_ms``: a hard limit for one attempt; the attempt is cancelled when it fires.
    - ``concurrency``: how many requests may run the operator at once (None = no limit).
    - ``queue_capacity``: how many requests may wait for a slot; beyond that ``on_full``
      decides: ``"reject"`` raises BusyError at once, ``"wait"`` waits for queue space.
    - ``per_user``: the most of those slots one user's requests hold at once (None = no
      cap): another user's waiter goes first rather than wait behind them.
    - ``optional``: a failure degrades the result (recorded on the request) instead of
      failing it. In a ParallelGroup the branch result is simply missing.
    """

    max_retries: int = 0
    backoff_ms: float = 50.0
    timeout_ms: float | None = None
    concurrency: int | None = None
    queue_capacity: int | None = None
    on_full: Literal["reject", "wait"] = "reject"
    per_user: int | None = None
    optional: bool = False

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.backoff_ms < 0:
            raise ConfigError(f"backoff_ms must be >= 0, got {self.backoff_ms}")
        if self.timeout_ms is not None and self.timeout_ms <= 0:
            raise ConfigError(f"timeout_ms must be > 0, got {self.timeout_ms}")
        if self.concurrency is not None and self.concurrency < 1:
            raise ConfigError(f"concurrency must be >= 1, got {self.concurrency}")
        if self.queue_capacity is not None:
            if self.queue_capacity < 0:
                raise ConfigError(f"queue_capacity must be >= 0, got {self.queue_capacity}")
            if self.concurrency is None:
                raise ConfigError(
                    "queue_capacity bounds the requests waiting for a concurrency slot; "
                    "set concurrency too, e.g. Policy(concurrency=1, queue_capacity=8)"
                )
        if self.per_user is not None:
            if self.per_user < 1:
                raise ConfigError(f"per_user must be >= 1, got {self.per_user}")
            if self.concurrency is None:
                raise ConfigError("per_user caps a user's share of the concurrency slots; set concurrency too")
        if self.on_full not in ("reject", "wait"):
            raise ConfigError(f"on_full must be 'reject' or 'wait', got {self.on_full!r}")

    @property
    def is_default(self) -> bool:
        return self == DEFAULT_POLICY

    def to_dict(self) -> dict[str, Any]:
        """Only the fields that differ from the defaults (keeps YAML short)."""
        d = asdict(self)
        return {f.name: d[f.name] for f in fields(self) if d[f.name] != f.default}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Policy":
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown policy field(s) {unknown}; known: {sorted(known)}")
        return cls(**data)

    def replace(self, **changes: Any) -> "Policy":
        return Policy.from_dict({**asdict(self), **changes})


DEFAULT_POLICY = Policy()
