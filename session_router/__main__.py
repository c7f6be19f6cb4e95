"""`python -m session_router`: the registry's housekeeping process.

Allocation itself is a Lua script the gateway runs directly in Redis (no extra network hop
on the session's critical path, no single point of failure). This process repairs what no
request would otherwise clean up: workers whose heartbeat expired and reservations whose
lease nobody renews (a gateway that crashed mid-session). It logs the pool's state when it
changes, so operators can see workers come and go.
"""

from __future__ import annotations

import asyncio
import signal

from session_router import metrics
from shared import metrics_http, streams
from shared.logs import configure
from shared.realtime.registry import Registry
from shared.settings import get_settings


async def serve(stop: asyncio.Event) -> None:
    settings = get_settings()
    log = configure("session-router")
    metrics_http.serve(settings.metrics_port)
    redis = streams.connect(settings.redis_url)
    registry = Registry(redis, lease_ms=int(settings.realtime_lease_ttl_s * 1000))
    log.info("session_router_started", interval_s=settings.realtime_router_interval_s)
    last: tuple | None = None
    try:
        while not stop.is_set():
            try:
                stale, expired = await registry.repair()
                metrics.REPAIRED.labels("stale_worker").inc(stale)
                metrics.REPAIRED.labels("expired_lease").inc(expired)
                if stale or expired:
                    log.warning("session_router_repaired", stale_workers=stale, expired_leases=expired)
                status = await registry.status()
                metrics.observe(status)
                snapshot = tuple((w["id"], w["status"], w["active_sessions"]) for w in status["workers"])
                if snapshot != last:
                    log.info(
                        "realtime_pool",
                        workers=len(status["workers"]),
                        capacity=status["capacity"],
                        active_sessions=status["active_sessions"],
                        models=status["models"],
                    )
                    last = snapshot
            except Exception as exc:  # Redis restarting: keep trying
                log.warning("session_router_error", error=f"{type(exc).__name__}: {exc}")
            try:
                await asyncio.wait_for(stop.wait(), timeout=settings.realtime_router_interval_s)
            except TimeoutError:
                pass
    finally:
        await redis.aclose()
        log.info("session_router_stopped")


def main() -> None:
    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
