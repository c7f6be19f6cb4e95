"""Prometheus metrics of the session router, served on `DALSTON_METRICS_PORT`
(shared.metrics_http): the realtime pool as a whole, for alerts and autoscaling (each
worker reports its own sessions and lag on its own /metrics)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge

WORKERS = Gauge("dalston_realtime_pool_workers", "Realtime workers registered, by status", ["status"])
CAPACITY = Gauge("dalston_realtime_pool_capacity", "Sessions the ready workers can take in all")
ACTIVE = Gauge("dalston_realtime_pool_active_sessions", "Sessions running on every worker")
AVAILABLE = Gauge("dalston_realtime_pool_available_slots", "Sessions the ready workers can still take")
REPAIRED = Counter(
    "dalston_realtime_pool_repaired_total",
    "Registry entries the router removed: `stale_worker` (heartbeat expired) or `expired_lease`",
    ["kind"],
)
WORKER_STATUSES = ("starting", "ready", "draining")


def observe(status: dict[str, Any]) -> None:
    """Set the pool gauges from shared.realtime.registry.Registry.status()."""
    CAPACITY.set(status["capacity"])
    ACTIVE.set(status["active_sessions"])
    AVAILABLE.set(status["available_slots"])
    counts = dict.fromkeys(WORKER_STATUSES, 0)
    for worker in status["workers"]:
        counts[worker["status"]] = counts.get(worker["status"], 0) + 1
    for name, count in counts.items():
        WORKERS.labels(name).set(count)
