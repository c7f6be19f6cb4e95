"""Prometheus metrics of a batch engine process (engines.runner), served on
`DALSTON_METRICS_PORT` (shared.metrics_http)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Tasks run from well under a second (prepare, merge) to an hour of audio on a CPU.
TASK_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

TASKS = Counter("dalston_engine_tasks_total", "Tasks this engine finished, by outcome", ["engine", "outcome"])
TASK_SECONDS = Histogram("dalston_engine_task_duration_seconds", "Time one task took to run", ["engine"], buckets=TASK_BUCKETS)
QUEUE_WAIT = Histogram(
    "dalston_engine_queue_wait_seconds",
    "From the task's message reaching the stream to this engine starting it",
    ["engine"],
    buckets=TASK_BUCKETS,
)
RECLAIMED = Counter(
    "dalston_engine_tasks_reclaimed_total",
    "Tasks taken over from another consumer: `dead` (its liveness key expired) or `idle` (held too long)",
    ["engine", "reason"],
)
HANDED_BACK = Counter(
    "dalston_engine_tasks_handed_back_total", "Tasks given up unfinished on SIGTERM for another instance to run", ["engine"]
)
MODEL_LOAD_SECONDS = Gauge("dalston_engine_model_load_seconds", "Time this process took to load its model", ["engine"])
BUSY = Gauge("dalston_engine_busy", "1 while this process runs a task", ["engine"])
