"""Prometheus metrics of the orchestrator, served on `DALSTON_METRICS_PORT`
(shared.metrics_http). The stream gauges are read from Redis every
`metrics_refresh_interval_s` (`refresh_streams`), so any one orchestrator reports the
whole fleet's queues."""

from __future__ import annotations

import contextlib

import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge

from shared import catalogue, keys, streams

JOBS = Counter("dalston_jobs_finished_total", "Jobs that reached a final state, by outcome", ["outcome"])
RETRIES = Counter("dalston_task_retries_total", "Failed task attempts that were queued again", ["engine"])
EVENTS_RECLAIMED = Counter(
    "dalston_orchestrator_events_reclaimed_total",
    "Events taken over from another orchestrator: `dead` (liveness key expired) or `idle` (held too long)",
    ["reason"],
)
DEAD_LETTERED = Counter("dalston_events_dead_lettered_total", "Events this orchestrator moved to the dead-letter stream")
DLQ_SIZE = Gauge("dalston_dlq_size", "Entries in the dead-letter stream")
WEBHOOK_ATTEMPTS = Counter(
    "dalston_webhook_attempts_total",
    "Webhook delivery attempts, by what became of the delivery: delivered, failed (for good) or retrying",
    ["result"],
)
STREAM_LENGTH = Gauge("dalston_stream_length", "Entries in an engine's stream (acknowledged ones included)", ["engine"])
STREAM_PENDING = Gauge(
    "dalston_stream_pending", "Tasks delivered to an engine instance and not acknowledged yet (running)", ["engine"]
)
STREAM_LAG = Gauge(
    "dalston_stream_lag",
    "Tasks on an engine's stream not delivered to any instance yet; absent while Redis cannot tell (after XDEL)",
    ["engine"],
)
STREAM_CONSUMERS = Gauge("dalston_stream_consumers", "Consumers registered on an engine's stream", ["engine"])


async def refresh_streams(r: aioredis.Redis) -> None:
    """Read every engine stream's length, pending entries and lag, and the DLQ's size."""
    for engine_id in catalogue.ENGINES:
        info = await streams.group_info(r, keys.engine_stream(engine_id), keys.ENGINE_GROUP)
        if info is None:
            info = streams.GroupInfo(length=0, pending=0, lag=0, consumers=0)
        STREAM_LENGTH.labels(engine_id).set(info.length)
        STREAM_PENDING.labels(engine_id).set(info.pending)
        STREAM_CONSUMERS.labels(engine_id).set(info.consumers)
        if info.lag is None:
            # No value beats a wrong one: alerts and autoscalers fall back on pending + length.
            with contextlib.suppress(KeyError):  # not exported yet
                STREAM_LAG.remove(engine_id)
        else:
            STREAM_LAG.labels(engine_id).set(info.lag)
    DLQ_SIZE.set(int(await r.xlen(keys.DLQ_STREAM)))
