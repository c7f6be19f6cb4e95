"""Fold the enrichment stages' outputs into the assembled transcript (pure)."""

from __future__ import annotations

from shared.catalogue import Stage
from shared.contracts import DetectOutput, RedactOutput, RefineOutput
from shared.transcript import StageInfo, Transcript


def apply_enrichment(
    transcript: Transcript,
    *,
    detected: DetectOutput | None = None,
    refined: RefineOutput | None = None,
    redacted: RedactOutput | None = None,
) -> Transcript:
    """Entities from detect (re-pointed by refine when it changed the text), refine's
    segments and summary, and a record of each stage that ran."""
    update: dict = {"stages": list(transcript.stages)}
    if detected is not None:
        update["entities"] = detected.entities
        update["stages"].append(StageInfo(stage=Stage.DETECT, engine_id=_engine(detected.details), details=detected.details))
    if refined is not None:
        segments = refined.segments
        update["segments"] = segments
        update["words"] = sorted((w for s in segments for w in s.words), key=lambda w: (w.start, w.end))
        update["text"] = " ".join(s.text.strip() for s in segments if s.text.strip())
        if refined.entities is not None:
            update["entities"] = refined.entities
        update["summary"] = refined.summary
        update["speaker_names"] = refined.speaker_names
        details = {**refined.details, "speaker_names": refined.speaker_names}
        update["stages"].append(StageInfo(stage=Stage.REFINE, engine_id=_engine(refined.details), details=details))
    if redacted is not None:
        details = {**redacted.details, "spans": len(redacted.spans), "audio_key": redacted.audio_key}
        update["stages"].append(StageInfo(stage=Stage.REDACT, engine_id=_engine(redacted.details), details=details))
    return transcript.model_copy(update=update)


def _engine(details: dict) -> str:
    return str(details.get("engine_id", "unknown"))
