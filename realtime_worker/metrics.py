"""Prometheus metrics of a realtime worker, served at its `/metrics`."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)

SESSIONS = Gauge("dalston_realtime_sessions", "Sessions running on this worker")
CAPACITY = Gauge("dalston_realtime_capacity", "Sessions this worker advertises it can take (measured, capped by configuration)")
FINAL_LOAD = Gauge("dalston_realtime_final_load", "Decoder seconds finals take per session-second (moving average)")
LAG = Gauge("dalston_realtime_lag_seconds", "Largest backlog of received but unprocessed audio among this worker's sessions")
DECODE_QUEUE = Gauge("dalston_realtime_decode_queue", "Decodes waiting", ["kind"])
DECODE_WAIT = Histogram(
    "dalston_realtime_decode_wait_seconds", "Time a decode waited in the queue", ["kind"], buckets=LATENCY_BUCKETS
)
DECODE_SECONDS = Histogram("dalston_realtime_decode_seconds", "Time one decode took", ["kind"], buckets=LATENCY_BUCKETS)
FINAL_LATENCY = Histogram(
    "dalston_realtime_final_latency_seconds", "From endpoint or commit to the final being sent", buckets=LATENCY_BUCKETS
)
PARTIAL_LATENCY = Histogram(
    "dalston_realtime_partial_latency_seconds",
    "From the audio a partial covers to the partial being sent",
    buckets=LATENCY_BUCKETS,
)
PARTIALS_SHED = Counter("dalston_realtime_partials_shed_total", "Partials not decoded: behind the audio, or replaced", ["reason"])
HELD_SECONDS = Counter(
    "dalston_realtime_held_seconds_total", "Time sessions' audio intake was paused for the decoder to catch up"
)
