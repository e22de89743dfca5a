"""The trace of one request: a record per node run, what went in and what came out.

The engine appends to ``RequestContext.trace`` as it walks the graph, so every request
knows, after the fact, what each operator received and produced, how long it took, which
attempt it was, and whether it ran, was skipped, or was *reused* from an earlier request
(a replay). That record is what replay, breakpoints and the Studio page's inspector are
built on. The kernel keeps it generic: records hold whatever messages flowed; rendering
them for people is the application's business (``Trace`` is subclassed there).

A trace can be compacted to its JSON form (``compact()``): the live messages are dropped
and records are rebuilt from JSON when read, so a long session keeps its recent traces
as objects and older ones as small documents.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from studio_nb.kernel import codec

#: a record's status: how the run ended (``reused`` is a flag, not a status: a reused
#: record keeps the status the original run had)
STATUSES = ("running", "completed", "failed", "retry", "skipped", "cancelled")
FORMAT = 1


@dataclass
class TraceRecord:
    """One run of one node (one attempt of it, when it was retried)."""

    operator: str
    input: Any = None
    output: Any = None
    status: str = "running"
    duration_ms: float = 0.0
    attempt: int = 0
    reused: bool = False
    kind: str = "operator"  # operator | group | branch | join
    group: str | None = None  # for branch and join records: their group
    visit: int = 0  # the how-many-th time this node ran in the request (feedback loops)
    started_ms: float = 0.0  # since the request started
    paused_ms: float = 0.0  # time spent at a breakpoint before this run
    error: str | None = None
    note: str | None = None  # why it was skipped / reused
    #: items a streaming operator showed the caller only (e.g. the evidence): replayed on reuse
    emitted: tuple[Any, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("completed", "skipped")

    def to_json(self, enc: codec.Encoder, path: str) -> dict[str, Any]:
        return {
            "operator": self.operator, "kind": self.kind, "group": self.group, "visit": self.visit,
            "attempt": self.attempt, "status": self.status, "reused": self.reused,
            "duration_ms": round(self.duration_ms, 3), "started_ms": round(self.started_ms, 3),
            "paused_ms": round(self.paused_ms, 3), "error": self.error, "note": self.note,
            "input": enc.encode(self.input, f"{path}/input"),
            "output": enc.encode(self.output, f"{path}/output"),
            "emitted": enc.encode(list(self.emitted), f"{path}/emitted"),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], dec: codec.Decoder, path: str) -> "TraceRecord":
        return cls(
            operator=data["operator"], kind=data.get("kind", "operator"), group=data.get("group"),
            visit=data.get("visit", 0), attempt=data.get("attempt", 0), status=data.get("status", "completed"),
            reused=bool(data.get("reused")), duration_ms=data.get("duration_ms", 0.0),
            started_ms=data.get("started_ms", 0.0), paused_ms=data.get("paused_ms", 0.0),
            error=data.get("error"), note=data.get("note"),
            input=dec.decode(data.get("input"), f"{path}/input"),
            output=dec.decode(data.get("output"), f"{path}/output"),
            emitted=tuple(dec.decode(data.get("emitted") or [], f"{path}/emitted")),
        )


class Trace:
    """The records of one request, in the order the runs started (see the module doc).

    Read it like a list (``for r in trace``, ``trace[0]``, ``len(trace)``), or by node:
    ``trace.runs("prompt_builder")`` (every run), ``trace.last("prompt_builder")``.
    """

    def __init__(self, records: list[TraceRecord] | None = None, *, meta: dict[str, Any] | None = None) -> None:
        self._records: list[TraceRecord] | None = list(records or [])
        self._json: dict[str, Any] | None = None
        self._visits: dict[str, int] = {}
        self.meta: dict[str, Any] = dict(meta or {})  # e.g. what a replay changed
        self._t0 = time.perf_counter()

    # ------------------------------------------------------------------ writing (the engine)
    def started(self) -> None:
        """Mark the start of the request (``started_ms`` counts from here)."""
        self._t0 = time.perf_counter()

    def next_visit(self, name: str) -> int:
        visit = self._visits.get(name, 0)
        self._visits[name] = visit + 1
        return visit

    def begin(self, operator: str, value: Any, **fields: Any) -> TraceRecord:
        """Append a record for a run that starts now (status ``running``)."""
        rec = TraceRecord(operator, value, started_ms=(time.perf_counter() - self._t0) * 1e3, **fields)
        self.records.append(rec)
        return rec

    def add(self, record: TraceRecord) -> TraceRecord:
        record.started_ms = (time.perf_counter() - self._t0) * 1e3
        self.records.append(record)
        return record

    # ------------------------------------------------------------------ reading
    @property
    def records(self) -> list[TraceRecord]:
        """The records (rebuilt from JSON each time once the trace is compacted)."""
        if self._records is not None:
            return self._records
        return self._decode(self._json)[0]

    def __iter__(self) -> Iterator[TraceRecord]:
        return iter(self.records)

    def __len__(self) -> int:
        return len(self._records) if self._records is not None else len(self._json["records"])

    def __getitem__(self, index: int) -> TraceRecord:
        return self.records[index]

    def __bool__(self) -> bool:
        return len(self) > 0

    @property
    def operators(self) -> list[str]:
        """Node names in the order they first ran."""
        return list(dict.fromkeys(r.operator for r in self.records))

    def runs(self, name: str) -> list[TraceRecord]:
        return [r for r in self.records if r.operator == name]

    def last(self, name: str) -> TraceRecord | None:
        """The last run of ``name`` (None if it did not run)."""
        runs = self.runs(name)
        return runs[-1] if runs else None

    @property
    def compacted(self) -> bool:
        return self._records is None

    def __repr__(self) -> str:
        rows = [f"<{type(self).__name__}: {len(self)} runs{' (compacted)' if self.compacted else ''}>"]
        for r in self.records:
            flag = " reused" if r.reused else ""
            rows.append(f"  {r.operator:<18} {r.status:<9}{flag} {r.duration_ms:8.1f} ms")
        return "\n".join(rows)

    # ------------------------------------------------------------------ JSON
    def to_json(self, enc: codec.Encoder | None = None, path: str = "") -> dict[str, Any]:
        """The whole trace as JSON (messages shared by ``$ref``; decodes back faithfully
        unless an encoder with limits clipped it)."""
        if self._records is None and enc is None:
            return self._json
        enc = enc or codec.Encoder()
        records = [r.to_json(enc, f"{path}/records/{i}") for i, r in enumerate(self.records)]
        return {"format": FORMAT, "meta": enc.encode(self.meta, f"{path}/meta"), "records": records,
                "complete": not enc.lossy}

    @classmethod
    def from_json(cls, data: dict[str, Any], dec: codec.Decoder | None = None, path: str = "") -> "Trace":
        trace = cls()
        trace._records, trace.meta = cls._decode(data, dec, path)
        return trace

    @staticmethod
    def _decode(data: dict[str, Any], dec: codec.Decoder | None = None,
                path: str = "") -> tuple[list[TraceRecord], dict[str, Any]]:
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise ValueError("not a trace: expected a JSON object with 'records'")
        dec = dec or codec.Decoder(data)
        records = [TraceRecord.from_json(r, dec, f"{path}/records/{i}") for i, r in enumerate(data["records"])]
        return records, dict(dec.decode(data.get("meta") or {}, f"{path}/meta"))

    def compact(self, data: dict[str, Any] | None = None) -> dict[str, Any]:
        """Keep only the JSON form (drops the live messages); returns it. ``data``: this
        trace's ``to_json()`` if the caller already made it (saves encoding twice)."""
        if self._records is not None:
            self._json = data if data is not None else self.to_json()
            self._records = None
        return self._json


__all__ = ["STATUSES", "Trace", "TraceRecord"]
