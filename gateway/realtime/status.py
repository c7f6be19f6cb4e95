"""`GET /v1/realtime/status`: the worker pool's capacity, load and models."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from gateway.auth import Principal, require_scope
from gateway.realtime.proxy import REALTIME_SCOPE, registry
from gateway.services import ServicesDep
from shared.catalogue import realtime_backend

router = APIRouter(tags=["realtime"])


@router.get("/v1/realtime/status")
async def realtime_status(
    _: Annotated[Principal, Depends(require_scope(REALTIME_SCOPE))], services: ServicesDep
) -> dict[str, Any]:
    """Capacity, active sessions, workers and the models they serve; `backends` names the
    realtime backend (shared.catalogue.REALTIME_BACKENDS) that serves each model."""
    status = await registry(services).status()
    status["backends"] = {model: realtime_backend(model, services.settings).id for model in status["models"]}
    return status
