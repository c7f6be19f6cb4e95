"""A job's known speakers: the enrolled voices (POST /v1/speakers) its diarizer names speakers by.

Native requests send `known_speakers` (speaker ids, repeated or comma-separated, or `all`
for the tenant's whole library); ElevenLabs requests send `use_speaker_library=true` (the
whole library). The voiceprints are resolved here, at submission, from the caller's own
tenant only, and travel in the job's speaker options to the diarize task: an id of another
tenant is as unknown as one that never existed.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from gateway import forms
from gateway.auth import Principal
from gateway.errors import ApiError
from gateway.services import Services
from shared import catalogue
from shared.catalogue import SpeakerDetection, Stage
from shared.contracts import JobOptions, KnownSpeaker
from shared.db import Speaker

ALL = "all"
FIELD = "known_speakers"
# Each known voice rides in the job's parameters and its diarize task's config (~256 floats).
MAX_KNOWN_SPEAKERS = 100


def requested(fields: forms.FieldSource, name: str = FIELD) -> list[str] | None:
    """The ids asked for (["all"] for the whole library); None when the field is absent."""
    try:
        values = forms.get_list(fields, name)
    except forms.FieldError as exc:
        raise ApiError(400, "invalid_parameter", str(exc)) from None
    ids = [part.strip() for value in values for part in str(value).split(",") if part.strip()]
    if not ids:
        return None
    return [ALL] if any(i.lower() == ALL for i in ids) else list(dict.fromkeys(ids))


def check_usable(options: JobOptions, settings_engines: dict[Stage, str], name: str = FIELD) -> None:
    """Known speakers need diarization by an engine that makes voiceprints."""
    if options.speaker_detection != SpeakerDetection.DIARIZE:
        raise ApiError(400, "invalid_parameter", f"{name} needs speaker_detection=diarize (or diarize=true)")
    engines = {**catalogue.DEFAULT_ENGINES, **settings_engines, **options.parameters.engines}
    transcriber = catalogue.engine(engines[Stage.TRANSCRIBE])
    diarizer = transcriber if transcriber.integrated else catalogue.engine(engines[Stage.DIARIZE])
    if not diarizer.voiceprints:
        makers = ", ".join(e.id for e in catalogue.ENGINES.values() if e.voiceprints)
        raise ApiError(
            400,
            "invalid_parameter",
            f"{name} needs a diarizer that makes voiceprints ({makers}); {diarizer.id} does not",
        )


async def resolve(services: Services, principal: Principal, ids: list[str]) -> list[KnownSpeaker]:
    """The caller's enrolled voices with these ids (or all of them); 400 naming an unknown id."""
    whole_library = ids == [ALL]
    if len(ids) > MAX_KNOWN_SPEAKERS:
        raise _too_many()
    parsed: dict[str, uuid.UUID] = {}
    for given in [] if whole_library else ids:
        try:
            parsed[given] = uuid.UUID(given)
        except ValueError:
            raise _unknown(given) from None
    query = select(Speaker).where(Speaker.tenant_id == principal.tenant_id)
    if not whole_library:
        query = query.where(Speaker.id.in_(list(parsed.values())))
    async with services.sessionmaker() as db:
        rows = list(await db.scalars(query.order_by(Speaker.created_at, Speaker.id).limit(MAX_KNOWN_SPEAKERS + 1)))
    if len(rows) > MAX_KNOWN_SPEAKERS:
        raise _too_many()
    found = {row.id for row in rows}
    missing = next((given for given, uid in parsed.items() if uid not in found), None)
    if missing is not None:
        raise _unknown(missing)
    return [_known(r) for r in rows]


async def current(services: Services, principal: Principal, given: list[KnownSpeaker]) -> list[KnownSpeaker]:
    """Those of `given` still in the caller's library, as enrolled now (a re-run's voices)."""
    ids = []
    for speaker in given:
        try:
            ids.append(uuid.UUID(speaker.id))
        except ValueError:
            continue
    async with services.sessionmaker() as db:
        rows = await db.scalars(
            select(Speaker).where(Speaker.tenant_id == principal.tenant_id, Speaker.id.in_(ids)).order_by(Speaker.created_at)
        )
        return [_known(row) for row in rows]


def _known(row: Speaker) -> KnownSpeaker:
    return KnownSpeaker(id=str(row.id), name=row.name, embedding=list(row.embedding), encoder=row.encoder)


def _too_many() -> ApiError:
    return ApiError(
        400, "invalid_parameter", f"a job can match at most {MAX_KNOWN_SPEAKERS} known speakers; name the ones you need"
    )


def _unknown(given: str) -> ApiError:
    return ApiError(400, "unknown_speaker", f"no enrolled speaker {given!r} in your speaker library (see GET /v1/speakers)")


async def attach(services: Services, principal: Principal, options: JobOptions, ids: list[str], name: str = FIELD) -> None:
    """Check that `options` can use known speakers and put the resolved voices into them."""
    check_usable(options, services.settings.stage_engines, name)
    known = await resolve(services, principal, ids)
    # Assigned, not mutated: the job stores only the speaker options that were set.
    options.parameters.diarize = options.parameters.diarize.model_copy(update={"known_speakers": known})
