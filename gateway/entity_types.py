"""GET /v1/audio/entity-types: the entity types PII detection finds (shared/entities.py),
with their category and how each is detected."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from gateway.auth import Principal, require_scope
from shared import entities


class EntityType(BaseModel):
    id: str  # what `pii_entity_types` takes
    category: str  # pii | pci | phi | other (also accepted by `pii_entity_types`)
    method: str


class EntityTypeList(BaseModel):
    entity_types: list[EntityType]
    categories: list[str]


router = APIRouter(prefix="/v1/audio", tags=["batch"])


@router.get("/entity-types", response_model=EntityTypeList)
async def list_entity_types(_principal: Annotated[Principal, Depends(require_scope("jobs:read"))]) -> EntityTypeList:
    return EntityTypeList(
        entity_types=[EntityType(id=t.id, category=t.category, method=t.method) for t in entities.ENTITY_TYPES.values()],
        categories=list(entities.CATEGORIES),
    )
