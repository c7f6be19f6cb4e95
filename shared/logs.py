"""structlog configuration: every line carries the service name."""

from __future__ import annotations

import logging
import sys

import structlog

from shared.settings import get_settings


def configure(service: str) -> structlog.stdlib.BoundLogger:
    settings = get_settings()
    level = logging.getLevelName(settings.log_level.upper())
    renderer = structlog.processors.JSONRenderer() if settings.log_json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level if isinstance(level, int) else logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        # Not cached: a module's logger would keep the first configuration it saw, so a later
        # configure() (or structlog.testing.capture_logs in tests) would not reach it.
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    structlog.contextvars.bind_contextvars(service=service)
    return structlog.get_logger()
