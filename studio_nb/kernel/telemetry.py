"""Exporters for StepEvents: Prometheus metrics and OpenTelemetry spans.

Both are ordinary event subscribers: ``pipeline.subscribe(PrometheusMetrics())`` or, for
every pipeline in the process, ``global_events.subscribe(...)``.
"""

from __future__ import annotations

from typing import Any

from studio_nb.kernel.events import StepEvent


class PrometheusMetrics:
    """Counts runs by status and observes durations, per operator.

    Metrics: ``studio_nb_operator_runs_total{pipeline,operator,status}``,
    ``studio_nb_operator_duration_seconds{pipeline,operator}`` and
    ``studio_nb_operator_in_flight{pipeline,operator}``.
    """

    def __init__(self, registry: Any = None) -> None:
        from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

        self.registry: CollectorRegistry = registry if registry is not None else REGISTRY
        labels = ("pipeline", "operator")
        self.runs = Counter(
            "studio_nb_operator_runs", "Operator runs by final status", labels + ("status",), registry=self.registry
        )
        self.duration = Histogram(
            "studio_nb_operator_duration_seconds",
            "Operator run time",
            labels,
            registry=self.registry,
            buckets=(0.0001, 0.001, 0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.in_flight = Gauge("studio_nb_operator_in_flight", "Operator runs in progress", labels, registry=self.registry)

    def __call__(self, ev: StepEvent) -> None:
        labels = (ev.pipeline, ev.operator)
        if ev.status == "running":
            self.in_flight.labels(*labels).inc()
            return
        if ev.status == "paused":  # waiting at a breakpoint: not a run
            return
        if ev.status not in ("skipped", "reused"):  # those never started
            self.in_flight.labels(*labels).dec()
        self.runs.labels(*labels, ev.status).inc()
        if ev.duration_ms is not None:
            self.duration.labels(*labels).observe(ev.duration_ms / 1000)

    def exposition(self) -> str:
        """The metrics in Prometheus text format (for an HTTP endpoint or a test)."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()


class OpenTelemetryExporter:
    """One span per operator run, with request/session ids as attributes.

    Needs the optional ``opentelemetry-api`` package (``pip install studio-nb[otel]``);
    pass a ``tracer_provider`` or the global one is used.
    """

    def __init__(self, tracer_provider: Any = None) -> None:
        try:
            from opentelemetry import trace
        except ImportError as exc:  # pragma: no cover - depends on the extra
            raise ImportError("OpenTelemetryExporter needs: pip install 'studio-nb[otel]'") from exc
        self._trace = trace
        self.tracer = (tracer_provider or trace.get_tracer_provider()).get_tracer("studio_nb")
        self._open: dict[tuple[str, str, int], Any] = {}

    def __call__(self, ev: StepEvent) -> None:
        key = (ev.request_id, ev.operator, ev.attempt)
        if ev.status == "paused":
            return
        if ev.status == "running":
            span = self.tracer.start_span(
                f"{ev.pipeline}.{ev.operator}" if ev.pipeline else ev.operator,
                attributes={
                    "studio_nb.operator": ev.operator,
                    "studio_nb.request_id": ev.request_id,
                    "studio_nb.session_id": ev.session_id or "",
                    "studio_nb.attempt": ev.attempt,
                },
            )
            self._open[key] = span
            return
        span = self._open.pop(key, None)
        if span is None:  # skipped operators never started: record an instant span
            span = self.tracer.start_span(ev.operator, attributes={"studio_nb.request_id": ev.request_id})
        span.set_attribute("studio_nb.status", ev.status)
        if ev.status in ("failed", "retry"):
            from opentelemetry.trace import Status, StatusCode

            span.set_status(Status(StatusCode.ERROR, ev.error or ev.status))
        span.end()
