"""The gateway's FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from gateway import (
    elevenlabs,
    errors,
    exports,
    job_actions,
    job_audio,
    jobs,
    keys,
    openai,
    realtime_sessions,
    speakers,
    webhooks,
)
from gateway.auth import check_routes, public
from gateway.console import engines as console_engines
from gateway.console import overview as console_overview
from gateway.console import session as console_session
from gateway.console import settings as console_settings
from gateway.console import spa as console_spa
from gateway.elevenlabs import realtime as elevenlabs_realtime
from gateway.enrichment import router as enrichment_router
from gateway.limits import RequestLimitsMiddleware
from gateway.metrics import metrics_response
from gateway.middleware import RequestContextMiddleware
from gateway.realtime import native as realtime_native
from gateway.realtime import openai as openai_realtime
from gateway.realtime import status as realtime_status
from gateway.services import Services
from shared import scratch
from shared.logs import configure
from shared.settings import Settings, get_settings

log = structlog.get_logger("gateway")


def sweep_scratch() -> None:
    """Remove what a killed gateway left in the temp dir: uploads it was receiving, audio
    it was serving, recordings it was assembling, media it was fetching."""
    for kind in scratch.GATEWAY_KINDS:
        removed, size = scratch.sweep(kind)
        if removed:
            log.info("scratch_swept", kind=kind, entries=removed, bytes=size)


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Clients (DB, Redis, storage) are created from `settings` at startup."""
    settings = settings or get_settings()
    configure("gateway")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.build(settings)
        app.state.services = services
        log.info("gateway_started", storage=settings.storage_backend)
        sweep_scratch()
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(title="Dalston", version="0.1.0", lifespan=lifespan)
    app.state.settings = settings
    # Innermost: compresses only the console's files, after every other check has passed.
    app.add_middleware(console_spa.ConsoleGZipMiddleware)
    # Added before the context, so it runs inside it (ids and access logs cover its refusals).
    app.add_middleware(RequestLimitsMiddleware, settings=settings)
    app.add_middleware(RequestContextMiddleware)
    errors.install(app)
    app.include_router(jobs.router)
    app.include_router(exports.router)
    app.include_router(enrichment_router)
    app.include_router(job_actions.router)
    app.include_router(job_audio.router)
    app.include_router(speakers.router)
    app.include_router(openai.router)
    app.include_router(elevenlabs.router)
    app.include_router(webhooks.router)
    app.include_router(realtime_status.router)
    app.include_router(realtime_native.router)
    app.include_router(elevenlabs_realtime.router)
    app.include_router(openai_realtime.router)
    app.include_router(realtime_sessions.router)
    app.include_router(keys.router)
    app.include_router(console_session.router)
    app.include_router(console_overview.router)
    app.include_router(console_engines.router)
    app.include_router(console_settings.router)
    app.include_router(console_spa.router)

    @app.get("/health", tags=["ops"], dependencies=[Depends(public())])
    async def health() -> dict[str, str]:
        """The process is up. Says nothing about its dependencies; see /ready."""
        return {"status": "ok"}

    @app.get("/ready", tags=["ops"], dependencies=[Depends(public())])
    async def ready(request: Request) -> JSONResponse:
        """Ready to serve: PostgreSQL and Redis answer."""
        services: Services = request.app.state.services
        checks: dict[str, str] = {}
        try:
            async with services.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            await services.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["ops"], include_in_schema=False, dependencies=[Depends(public())])
    async def metrics():
        return metrics_response()

    check_routes(app)  # deny by default: every route must have declared its access
    return app
