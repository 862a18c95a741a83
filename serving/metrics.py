"""Custom Serve metrics for the emergence API.

The metric objects are created lazily, on first use inside the replica process (never at
import), through `ray.serve.metrics`, which adds the `application`, `deployment` and `replica`
tags by itself. Ray exports them on each node's metrics port with a `ray_` prefix, e.g.
`ray_emergence_requests_total` (the exporter appends `_total` to counters) and
`ray_emergence_request_latency_seconds_bucket/_sum/_count` for histograms.
"""

from __future__ import annotations

import threading

REQUESTS = "emergence_requests"
REQUEST_LATENCY = "emergence_request_latency_seconds"
RELAX_STEPS = "emergence_relax_steps"
RELAX_SECONDS = "emergence_relax_seconds"
RELAX_FINAL_ENERGY = "emergence_relax_final_energy"
PREDICTIONS = "emergence_predictions"
PREDICT_STEPS = "emergence_predict_steps"
PREDICT_VIOLATIONS = "emergence_predict_thermo_violations"
PREDICT_GROUP_SIZE = "emergence_predict_group_size"

LATENCY_BOUNDARIES = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]
STEPS_BOUNDARIES = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000]
RELAX_SECONDS_BOUNDARIES = [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0]
PREDICT_STEPS_BOUNDARIES = [1, 2, 5, 10, 20, 50, 100]
GROUP_SIZE_BOUNDARIES = [1, 2, 4, 8, 16, 32, 64]


class ServingMetrics:
    """The API's metrics; construct inside a replica (use `get_metrics()`)."""

    def __init__(self):
        from ray.serve.metrics import Counter, Gauge, Histogram

        self.requests = Counter(
            REQUESTS, description="HTTP requests answered, by route and status code.", tag_keys=("route", "status")
        )
        self.request_latency = Histogram(
            REQUEST_LATENCY,
            description="Time to answer an HTTP request, by route (seconds).",
            boundaries=LATENCY_BOUNDARIES,
            tag_keys=("route",),
        )
        self.relax_steps = Histogram(
            RELAX_STEPS, description="Accepted steps per relaxation.", boundaries=STEPS_BOUNDARIES
        )
        self.relax_seconds = Histogram(
            RELAX_SECONDS, description="Solver wall time per relaxation (seconds).", boundaries=RELAX_SECONDS_BOUNDARIES
        )
        self.relax_final_energy = Gauge(
            RELAX_FINAL_ENERGY, description="Final energy of the last relaxation, by method.", tag_keys=("method",)
        )
        self.predictions = Counter(
            PREDICTIONS, description="NVP predictions answered (a rollout counts once), by domain.", tag_keys=("domain",)
        )
        self.predict_steps = Histogram(
            PREDICT_STEPS, description="Steps per NVP prediction (1 unless a rollout).", boundaries=PREDICT_STEPS_BOUNDARIES
        )
        self.predict_violations = Counter(
            PREDICT_VIOLATIONS, description="Thermodynamic limit violations seen in predictions, by domain.",
            tag_keys=("domain",),
        )
        # Requests that shared one forward pass: how much @serve.batch actually batches.
        self.predict_group_size = Histogram(
            PREDICT_GROUP_SIZE, description="Requests per NVP forward pass.", boundaries=GROUP_SIZE_BOUNDARIES
        )

    def record_request(self, route: str, status: int, seconds: float) -> None:
        self.requests.inc(1, tags={"route": route, "status": str(status)})
        self.request_latency.observe(seconds, tags={"route": route})

    def record_relax(self, method: str, steps: int, seconds: float, energy: float) -> None:
        self.relax_steps.observe(steps)
        self.relax_seconds.observe(seconds)
        self.relax_final_energy.set(energy, tags={"method": method})

    def record_prediction(self, domain: str, steps: int, violations: int) -> None:
        self.predictions.inc(1, tags={"domain": domain})
        self.predict_steps.observe(steps)
        if violations:
            self.predict_violations.inc(violations, tags={"domain": domain})

    def record_predict_group(self, size: int) -> None:
        self.predict_group_size.observe(size)


_lock = threading.Lock()
_metrics: ServingMetrics | None = None


def get_metrics() -> ServingMetrics:
    """The process-wide metrics, created on first call."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = ServingMetrics()
    return _metrics
