"""`python -m realtime_worker --port N`: serve realtime sessions and join the worker pool."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys

from realtime_worker.asr import BackendUnavailable
from realtime_worker.server import Worker
from shared.logs import configure
from shared.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m realtime_worker", description="Dalston realtime worker")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--url", default=settings.realtime_worker_url, help="URL the gateway dials (default ws://<host>:<port>)")
    parser.add_argument("--worker-id", default=None)
    parser.add_argument("--capacity", type=int, default=settings.realtime_worker_capacity)
    parser.add_argument("--models", default=",".join(settings.realtime_worker_models), help="comma-separated model names")
    args = parser.parse_args(argv)
    log = configure("realtime-worker")
    if args.capacity < 1:
        parser.error("--capacity must be at least 1")
    # Bound to every interface (a container): advertise this host's address.
    advertised = args.host if args.host not in ("0.0.0.0", "::", "") else socket.gethostbyname(socket.gethostname())
    worker = Worker(
        settings,
        host=args.host,
        port=args.port,
        url=args.url or f"ws://{advertised}:{args.port}",
        worker_id=args.worker_id or f"{socket.gethostname()}:{args.port}",
        capacity=args.capacity,
        models=[m.strip() for m in args.models.split(",") if m.strip()],
    )
    try:
        worker.load()
    except BackendUnavailable as exc:
        log.error("model_unavailable", error=str(exc))
        sys.exit(2)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await worker.serve(stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()
