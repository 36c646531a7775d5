"""The server's Prometheus metrics, one registry per application."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


class Metrics:
    """Requests by route and status, their latency, records predicted, sessions alive and the
    sizes of the batched session steps."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("lstmkit_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("lstmkit_request_seconds", "request latency", ["route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.predicted = Counter("lstmkit_predicted_records", "records predicted", ["model"], registry=self.registry)
        self.active = Gauge("lstmkit_active_sessions", "sessions alive", registry=self.registry)
        self.batch_sizes = Histogram("lstmkit_step_batch_size", "sessions per batched step", ["model"],
                                     registry=self.registry, buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))

    def latest(self) -> bytes:
        return generate_latest(self.registry)
