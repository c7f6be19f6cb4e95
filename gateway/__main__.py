"""`python -m gateway [--host H] [--port P]`: serve the gateway with uvicorn."""

from __future__ import annotations

import argparse

import structlog
import uvicorn

from gateway.app import create_app
from shared.settings import get_settings


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m gateway", description="Dalston API gateway")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args(argv)
    app = create_app(settings)
    structlog.get_logger("gateway").info("gateway_listening", url=f"http://{args.host}:{args.port}")
    # Access lines come from our middleware (with request ids), so uvicorn's are off.
    # WebSocket messages past this size are closed with 1009 before they are buffered;
    # smaller oversize frames get a chunk_too_large error from the realtime edge.
    ws_max_size = max(4 * settings.realtime_max_chunk_bytes, 1 << 20)
    # On SIGTERM uvicorn stops accepting and lets in-flight requests (uploads) finish, then
    # cuts what is left after the drain timeout.
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        access_log=False,
        log_config=None,
        ws_max_size=ws_max_size,
        timeout_graceful_shutdown=int(settings.gateway_drain_timeout_s),
    )


if __name__ == "__main__":
    main()
