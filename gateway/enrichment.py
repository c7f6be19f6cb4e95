"""The native enrichment options (PII detection and redaction, LLM cleanup, emotions, audio
events) of a batch request or a hybrid session's `enhance_on_end`, read from form fields or
query parameters.

`parse` turns them into `EnrichOptions`; `check_available` refuses, up front, what this
server cannot run (a stage whose engine has no weights or server configured: the LLM, the
emotion and event models).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ValidationError

from gateway import forms
from gateway.auth import Principal, require_scope
from gateway.errors import ApiError
from gateway.services import ServicesDep
from shared import catalogue, entities
from shared.audio_events import EVENT_TYPES
from shared.catalogue import Stage
from shared.contracts import EnrichOptions
from shared.formats.redaction import DEFAULT_STYLE, STYLES
from shared.settings import Settings

AUDIO_MODES = ("silence", "beep")
ENRICH_FIELDS = (
    "pii_detection",
    "pii_entity_types",
    "redact_pii_text",
    "redact_pii_audio",
    "pii_redaction_mode",
    "pii_audio_buffer_s",
    "delete_original_audio",
    "llm_cleanup",
    "no_verbatim",
    "summary",
    "detect_emotions",
    "detect_events",
)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_parameter", message)


def entity_types(values: list[object], name: str) -> list[str]:
    """Entity type ids for `all`, categories and types, given repeated, as a JSON list or
    comma-separated; 400 naming what is unknown."""
    requested = [part.strip() for value in values for part in str(value).split(",") if part.strip()]
    try:
        return entities.select(requested)
    except ValueError as exc:
        raise _invalid(f"{name}: {exc}") from None


def _style(fields: forms.FieldSource) -> str | None:
    value = forms.get_str(fields, "redact_pii_text")
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "on"):
        return DEFAULT_STYLE
    if lowered in ("false", "0", "no", "off"):
        return None
    if lowered not in STYLES:
        raise _invalid(f"redact_pii_text must be one of {', '.join(STYLES)} (or true/false), not {value!r}")
    return lowered


def parse(fields: forms.FieldSource) -> EnrichOptions | None:
    """The request's enrichment options; None when it gave none. Raises ApiError (400)."""
    try:
        given: dict[str, object] = {}
        for name in (
            "pii_detection",
            "redact_pii_audio",
            "delete_original_audio",
            "llm_cleanup",
            "no_verbatim",
            "summary",
            "detect_emotions",
            "detect_events",
        ):
            value = forms.get_bool(fields, name)
            if value is not None:
                given[name] = value
        style = _style(fields)
        if style is not None:
            given["redact_pii_text"] = style
        mode = forms.get_str(fields, "pii_redaction_mode")
        if mode is not None:
            if mode.lower() not in AUDIO_MODES:
                raise _invalid(f"pii_redaction_mode must be one of {', '.join(AUDIO_MODES)}, not {mode!r}")
            given["pii_redaction_mode"] = mode.lower()
        buffer_s = forms.get_float(fields, "pii_audio_buffer_s", minimum=0.0, maximum=2.0)
        if buffer_s is not None:
            given["pii_audio_buffer_s"] = buffer_s
        types = forms.get_list(fields, "pii_entity_types")
    except forms.FieldError as exc:
        raise _invalid(str(exc)) from None
    if types:
        given["pii_entity_types"] = entity_types(types, "pii_entity_types")
    if not given:
        return None
    try:
        options = EnrichOptions(**given)
    except ValidationError as exc:
        raise _invalid(str(exc.errors()[0]["msg"])) from None
    if "pii_entity_types" in given and not options.detect:
        raise _invalid("pii_entity_types needs pii_detection=true (or redact_pii_text / redact_pii_audio)")
    audio_only = [n for n in ("pii_redaction_mode", "pii_audio_buffer_s", "delete_original_audio") if n in given]
    if audio_only and not options.redact_pii_audio:
        raise _invalid(f"{', '.join(audio_only)} configure audio redaction: they need redact_pii_audio=true")
    return options


def unavailable(settings: Settings, stage: Stage) -> str | None:
    """Why `stage` cannot run on this server (its engine's weights or server are not configured), or None."""
    engine_id = {**catalogue.DEFAULT_ENGINES, **settings.stage_engines}[stage]
    return catalogue.engine(engine_id).unconfigured(settings)


def check_available(settings: Settings, options: EnrichOptions, *, no_verbatim_name: str = "no_verbatim") -> None:
    """Refuse options whose stage cannot run on this server (400 feature_unavailable)."""
    asked_by_stage = {
        Stage.REFINE: [
            name
            for name, on in (
                ("llm_cleanup", options.llm_cleanup),
                (no_verbatim_name, options.no_verbatim),
                ("summary", options.summary),
                ("detect_speaker_roles", options.speaker_roles),
            )
            if on
        ],
        Stage.EMOTIONS: ["detect_emotions"] if options.detect_emotions else [],
        Stage.EVENTS: ["detect_events"] if options.detect_events else [],
    }
    for stage, asked in asked_by_stage.items():
        missing = unavailable(settings, stage) if asked else None
        if missing is not None:
            raise ApiError(
                400,
                "feature_unavailable",
                f"{', '.join(asked)} need(s) the {stage} stage, which is not available on this server: {missing}; omit it",
            )


# --- what this server can do: GET /v1/audio/enrichment ----------------------------------


class EntityTypeInfo(BaseModel):
    id: str  # what `pii_entity_types` takes
    category: str  # pii | pci | phi | other (also accepted by `pii_entity_types`)
    method: str  # how it is detected


class StageAvailability(BaseModel):
    available: bool
    reason: str | None  # why not, when not (e.g. DALSTON_LLM_BASE_URL unset)


class EnrichmentCapabilities(BaseModel):
    """What a submission form needs to offer the enrichment options honestly."""

    entity_types: list[EntityTypeInfo]
    categories: list[str]
    redaction_styles: list[str]
    audio_redaction_modes: list[str]
    llm_refine: StageAvailability  # llm_cleanup, no_verbatim, summary
    emotions: StageAvailability  # detect_emotions
    events: StageAvailability  # detect_events (and ElevenLabs tag_audio_events)
    event_types: list[str]  # what detect_events reports


router = APIRouter(prefix="/v1/audio", tags=["batch"])


@router.get("/enrichment", response_model=EnrichmentCapabilities)
async def enrichment_capabilities(
    _principal: Annotated[Principal, Depends(require_scope("jobs:read"))], services: ServicesDep
) -> EnrichmentCapabilities:
    """The enrichment options this server accepts: entity types, redaction styles, and
    whether the stages that need configuration (the LLM, the emotion and event models) have it."""
    settings = services.settings

    def availability(stage: Stage) -> StageAvailability:
        missing = unavailable(settings, stage)
        return StageAvailability(available=missing is None, reason=missing)

    return EnrichmentCapabilities(
        entity_types=[EntityTypeInfo(id=t.id, category=t.category, method=t.method) for t in entities.ENTITY_TYPES.values()],
        categories=list(entities.CATEGORIES),
        redaction_styles=list(STYLES),
        audio_redaction_modes=list(AUDIO_MODES),
        llm_refine=availability(Stage.REFINE),
        emotions=availability(Stage.EMOTIONS),
        events=availability(Stage.EVENTS),
        event_types=list(EVENT_TYPES),
    )
