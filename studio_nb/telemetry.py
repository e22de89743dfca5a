"""Telemetry switched on by configuration: Prometheus, OpenTelemetry, the Redis event bus.

    telemetry:
      prometheus: true                      # per-operator run counters and duration histograms
      otel: true                            # one span per operator run (the global tracer provider)
      event_bus: redis://127.0.0.1:6379/0   # every step event on a Redis Stream (studio-nb events -f)

``create_studio_pipeline`` calls ``install`` with the ``telemetry`` key, so the server
extension, the CLI and the magic honour the same settings; the server extension serves
the Prometheus metrics at ``{base_url}studio/metrics``. Each exporter is an ordinary
subscriber of the pipeline's step events (``kernel/telemetry.py``, ``services/eventbus.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from studio_nb.errors import ConfigError

KEYS = ("prometheus", "otel", "event_bus")


@dataclass
class Telemetry:
    """The exporters subscribed to one pipeline; ``close()`` unsubscribes and flushes them."""

    prometheus: Any = None  # kernel.telemetry.PrometheusMetrics with its own registry
    otel: Any = None
    event_bus: Any = None  # services.eventbus.EventBusSink
    _unsubscribe: list[Callable[[], None]] = field(default_factory=list)

    @property
    def enabled(self) -> list[str]:
        return [k for k in KEYS if getattr(self, k) is not None]

    def close(self) -> None:
        for undo in self._unsubscribe:
            undo()
        self._unsubscribe.clear()
        if self.event_bus is not None:
            self.event_bus.close()


def install(pipeline: Any, settings: dict[str, Any] | None) -> Telemetry:
    """Subscribe the exporters ``settings`` asks for to ``pipeline``'s step events."""
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(KEYS))
    if unknown:
        raise ConfigError(f"unknown telemetry key(s) {unknown}; known: {list(KEYS)}")
    tel = Telemetry()
    if settings.get("prometheus"):
        from prometheus_client import CollectorRegistry

        from studio_nb.kernel.telemetry import PrometheusMetrics

        tel.prometheus = PrometheusMetrics(CollectorRegistry())  # per pipeline: no clash between pipelines
        tel._unsubscribe.append(pipeline.subscribe(tel.prometheus))
    otel = settings.get("otel")
    if otel:
        from studio_nb.kernel.telemetry import OpenTelemetryExporter

        tel.otel = OpenTelemetryExporter(otel.get("tracer_provider") if isinstance(otel, dict) else None)
        tel._unsubscribe.append(pipeline.subscribe(tel.otel))
    bus = settings.get("event_bus")
    if bus:
        from studio_nb.services.eventbus import EventBusSink

        options = {"url": bus} if isinstance(bus, str) else dict(bus)
        tel.event_bus = EventBusSink(**options)
        tel._unsubscribe.append(pipeline.subscribe(tel.event_bus))
    return tel


def event_bus_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """``{"url", "stream"}`` of the configured event bus (defaults when none is configured)."""
    from studio_nb.services.eventbus import DEFAULT_STREAM, DEFAULT_URL

    bus = (settings or {}).get("event_bus")
    if isinstance(bus, str):
        return {"url": bus, "stream": DEFAULT_STREAM}
    if isinstance(bus, dict):
        return {"url": bus.get("url", DEFAULT_URL), "stream": bus.get("stream", DEFAULT_STREAM)}
    return {"url": DEFAULT_URL, "stream": DEFAULT_STREAM}
