"""Prometheus metrics for the gateway, served at /metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from starlette.responses import Response

HTTP_REQUESTS = Counter("dalston_gateway_http_requests_total", "HTTP requests handled", ["method", "route", "status"])
HTTP_LATENCY = Histogram("dalston_gateway_http_request_duration_seconds", "HTTP request latency", ["method", "route"])
JOBS_SUBMITTED = Counter("dalston_gateway_jobs_submitted_total", "Batch jobs accepted", ["model"])
UPLOAD_BYTES = Counter("dalston_gateway_upload_bytes_total", "Audio bytes accepted in uploads")


def metrics_response() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
