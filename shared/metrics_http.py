"""Prometheus' /metrics for processes that serve no HTTP of their own (engines, the
orchestrator, the session router): a small server on `DALSTON_METRICS_PORT`."""

from __future__ import annotations

import structlog
from prometheus_client import start_http_server

log = structlog.get_logger()


def serve(port: int, host: str = "0.0.0.0") -> None:
    """Serve the default registry on `port` from a daemon thread; 0 serves nothing.
    Bound to every interface: Prometheus scrapes pods and containers from outside."""
    if port == 0:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        # Another process on this host has the port (one DALSTON_METRICS_PORT for a whole
        # `dalston up`): the work matters more than its metrics, so run on without them.
        log.error("metrics_port_unavailable", port=port, error=str(exc))
        return
    log.info("metrics_listening", port=port)
