"""Native exports: a completed job's transcript as SRT, WebVTT, plain text, JSON, DOCX or PDF.

JSON is the canonical transcript, entities and summary included. A job that asked for
`redact_pii_text` exports the redacted transcript in every format.

DOCX and PDF are the renderers of ElevenLabs' `additional_formats` (shared.formats.documents),
so a document reads the same whichever API asked for it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, TypedDict

from fastapi import APIRouter, Depends, Query, Request, Response

from gateway import audit
from gateway.auth import Principal, require_scope
from gateway.errors import ApiError
from gateway.schemas import ErrorResponse
from gateway.services import ServicesDep
from gateway.stored_jobs import load_job, load_transcript
from shared.db import JobStatus
from shared.formats import EXPORT_FORMATS, documents, text
from shared.formats.redaction import redact

router = APIRouter(
    prefix="/v1/audio/transcriptions",
    tags=["batch"],
    responses={status: {"model": ErrorResponse} for status in (400, 401, 403, 404, 409)},
)
Reader = Annotated[Principal, Depends(require_scope("jobs:read"))]


class _CueOptions(TypedDict):
    """The cue-building keywords `text.to_srt` and `text.to_vtt` share."""

    max_line_chars: int
    max_lines: int
    include_speakers: bool
    max_segment_duration_s: float | None


@router.get(
    "/{job_id}/export/{format}",
    response_class=Response,
    responses={200: {"content": {media_type.split(";")[0]: {} for media_type in EXPORT_FORMATS.values()}}},
)
async def export_transcript(
    job_id: str,
    format: str,
    request: Request,
    principal: Reader,
    services: ServicesDep,
    max_line_chars: Annotated[int, Query(ge=1, le=1000, description="srt/vtt: characters per subtitle line")] = 42,
    max_lines: Annotated[int, Query(ge=1, le=10, description="srt/vtt: lines per cue")] = 2,
    max_segment_duration_s: Annotated[float | None, Query(gt=0, description="srt/vtt: longest cue, seconds")] = None,
    include_speakers: Annotated[bool, Query(description="label text with its speaker when the transcript has speakers")] = True,
    include_timestamps: Annotated[
        bool | None,
        Query(description="txt, docx, pdf: prefix each paragraph with its time range (default: txt no, documents yes)"),
    ] = None,
) -> Response:
    """Download the transcript of a completed job as srt, vtt, txt, json, docx or pdf."""
    fmt = format.lower()
    if fmt not in EXPORT_FORMATS:
        raise ApiError(400, "invalid_format", f"export format must be one of {', '.join(EXPORT_FORMATS)}, not {format!r}")
    async with services.sessionmaker() as db:
        job = await load_job(db, principal, job_id)
    if job.status != JobStatus.completed.value:
        raise ApiError(409, "job_not_completed", f"the job is {job.status}; exports exist once it has completed")
    transcript = await load_transcript(services, job)
    if transcript is None:
        raise ApiError(404, "transcript_not_found", f"the transcript of job {job_id} is missing from storage")
    style = job.options().enrich.redact_pii_text
    if style is not None:
        # A job that asked for text redaction exports only the redacted text, in every format
        # (json included: its entities then point at their placeholders).
        transcript = redact(transcript, style)

    cue_options: _CueOptions = {
        "max_line_chars": max_line_chars,
        "max_lines": max_lines,
        "include_speakers": include_speakers,
        "max_segment_duration_s": max_segment_duration_s,
    }
    body: str | bytes
    if fmt == "srt":
        body = text.to_srt(transcript, **cue_options)
    elif fmt == "vtt":
        body = text.to_vtt(transcript, **cue_options)
    elif fmt == "txt":
        body = text.to_txt(transcript, include_speakers=include_speakers, include_timestamps=bool(include_timestamps))
    elif fmt in ("docx", "pdf"):
        options = documents.ExportOptions(
            format=fmt,
            include_speakers=include_speakers,
            include_timestamps=True if include_timestamps is None else include_timestamps,
            max_segment_duration_s=max_segment_duration_s,
        )
        render = documents.to_docx if fmt == "docx" else documents.to_pdf
        body = await asyncio.to_thread(render, transcript, options)  # fpdf2 on a long transcript takes a while
    else:
        body = json.dumps(text.to_json(transcript), ensure_ascii=False)
    await audit.record(
        services.sessionmaker,
        audit.TRANSCRIPT_EXPORTED,
        conn=request,
        principal=principal,
        resource_type="job",
        resource_id=job.id,
        details={"format": fmt},
    )
    return Response(
        body.encode() if isinstance(body, str) else body,
        media_type=EXPORT_FORMATS[fmt],
        headers={"Content-Disposition": f'attachment; filename="transcript-{job.id}.{fmt}"'},
    )
