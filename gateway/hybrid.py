"""Hybrid mode: a realtime session's connect-time choices about retention and batch
enhancement, and the batch job submitted over its recording when it ends.

Query parameters (the same on the native and the ElevenLabs endpoint):

- `retain_audio=false` (ElevenLabs: also `enable_logging=false`): store nothing.
- `enhance_on_end=true`: when the session ends, submit its recording as a batch job.
- enhancement options, validated like a batch request's before the session starts:
  `speaker_detection` (or `diarize=true`), `num_speakers`, `min_speakers`, `max_speakers`,
  `diarization_threshold`, `diarizer`, `enhance_model` (default: the session's model),
  and the batch API's enrichment options (`pii_detection`, `pii_entity_types`,
  `redact_pii_text`, `redact_pii_audio`, `pii_redaction_mode`, `pii_audio_buffer_s`,
  `delete_original_audio`, `llm_cleanup`, `no_verbatim`, `summary`; see gateway.enrichment).
  The language is the session's own.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway import enrichment, forms
from gateway.auth import Principal
from gateway.errors import ApiError
from gateway.services import Services
from gateway.submission import submit_job, validate_options
from gateway.uploads import Upload
from shared import retention, scratch
from shared.contracts import JobOptions
from shared.realtime import recording
from shared.settings import Settings

ENHANCE_SCOPE = "jobs:write"
ENHANCEMENT_FIELDS = (
    "speaker_detection",
    "diarize",
    "num_speakers",
    "min_speakers",
    "max_speakers",
    "diarization_threshold",
    "diarizer",
    "enhance_model",
)


# Enrichment names that are also options of the realtime session itself (ElevenLabs'
# realtime `no_verbatim`): without enhance_on_end they are the session's business.
REALTIME_OWN = frozenset({"no_verbatim"})


def _switched_on(value: str | None) -> bool:
    return bool(value) and (value or "").strip().lower() not in ("false", "0", "no", "off", "null", "none")


class InvalidHybridOption(ValueError):
    """A connect-time option the session must be refused for; the message is for the client."""


@dataclass(frozen=True)
class HybridOptions:
    retain_audio: bool
    enhancement: JobOptions | None  # None: no enhance_on_end
    # `retention` days asked for (None: the tenant's default): the recording's, and the
    # enhancement job's copy of it.
    retention_days: int | None = None

    def enhancement_dict(self) -> dict[str, Any] | None:
        return self.enhancement.stored() if self.enhancement else None


def parse(
    query: Mapping[str, str],
    *,
    settings: Settings,
    principal: Principal,
    model: str,
    language: str | None,
    logging_enabled: bool = True,
) -> HybridOptions:
    """Read and validate the hybrid-mode options; raises InvalidHybridOption."""
    try:
        retain = forms.get_bool(query, "retain_audio", settings.realtime_retain_audio) and logging_enabled
        enhance = forms.get_bool(query, "enhance_on_end", False)
        diarize = forms.get_bool(query, "diarize")
        num_speakers = forms.get_int(query, "num_speakers")
        min_speakers = forms.get_int(query, "min_speakers")
        max_speakers = forms.get_int(query, "max_speakers")
        diarization_threshold = forms.get_float(query, "diarization_threshold")
        retention_days = retention.parse(query.get("retention"))
    except (forms.FieldError, retention.InvalidRetention) as exc:
        raise InvalidHybridOption(str(exc)) from None
    given = [name for name in ENHANCEMENT_FIELDS if query.get(name)]
    given += [name for name in enrichment.ENRICH_FIELDS if name not in REALTIME_OWN and _switched_on(query.get(name))]
    if not enhance:
        if given:
            raise InvalidHybridOption(f"{', '.join(given)} configure the batch enhancement: they need enhance_on_end=true")
        return HybridOptions(retain_audio=retain, enhancement=None, retention_days=retention_days)
    if not retain:
        raise InvalidHybridOption(
            "enhance_on_end=true needs the session's recording: it cannot be combined with retain_audio=false / enable_logging=false"
        )
    if not principal.allows(ENHANCE_SCOPE):
        raise InvalidHybridOption(f"enhance_on_end=true submits a batch job: the API key lacks the {ENHANCE_SCOPE!r} scope")
    mode = (query.get("speaker_detection") or "").strip() or None
    if diarize:
        if mode not in (None, "diarize"):
            raise InvalidHybridOption(f"diarize=true contradicts speaker_detection={mode}")
        mode = "diarize"
    try:
        options = validate_options(
            settings,
            model=(query.get("enhance_model") or "").strip() or model,
            language=language,
            speaker_detection=mode,
            diarizer=(query.get("diarizer") or "").strip() or None,
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
            diarization_threshold=diarization_threshold,
        )
        enrich = enrichment.parse(query)
        if enrich is not None:
            enrichment.check_available(settings, enrich)
            options.parameters.enrich = enrich
    except ApiError as exc:
        raise InvalidHybridOption(f"enhancement: {exc.message}") from None
    return HybridOptions(retain_audio=True, enhancement=options, retention_days=retention_days)


class EnhancementRefused(Exception):
    """The recording cannot be enhanced; the message is for the client."""


async def submit_enhancement(
    services: Services,
    principal: Principal,
    session_id: uuid.UUID,
    options: dict[str, Any],
    retention_days: int | None = None,
) -> uuid.UUID:
    """Assemble the session's recording (whole, or what a lost worker had stored) into a
    WAV and submit it as a batch job linked to the session; returns the job id."""
    store = services.store
    manifest = await asyncio.to_thread(recording.read_manifest, store, str(session_id))
    if manifest is None or manifest.bytes == 0:
        raise EnhancementRefused("the session recorded no audio: there is nothing to enhance")
    with tempfile.TemporaryDirectory(prefix=scratch.prefix(scratch.SESSION)) as tmp:
        path = Path(tmp) / f"session-{session_id}.wav"
        size = await asyncio.to_thread(recording.write_wav, store, str(session_id), manifest, path)
        upload = Upload(path=path, filename=path.name, content_type="audio/wav", size=size)
        try:
            job = await submit_job(
                services, principal, upload, JobOptions.model_validate(options),
                source_session_id=session_id, retention_days=retention_days,
            )  # fmt: skip
        except ApiError as exc:
            raise EnhancementRefused(exc.message) from None
    return job.id
