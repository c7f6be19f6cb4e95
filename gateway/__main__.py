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
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_config=None)


if __name__ == "__main__":
    main()
