"""Fold the enrichment stages' outputs into the assembled transcript (pure)."""

from __future__ import annotations

from shared.catalogue import Stage
from shared.contracts import DetectOutput, EmotionsOutput, EventsOutput, RedactOutput, RefineOutput
from shared.transcript import AudioEvent, Segment, StageInfo, Transcript


def apply_enrichment(
    transcript: Transcript,
    *,
    detected: DetectOutput | None = None,
    refined: RefineOutput | None = None,
    redacted: RedactOutput | None = None,
    emotions: EmotionsOutput | None = None,
    events: EventsOutput | None = None,
) -> Transcript:
    """Entities from detect (re-pointed by refine when it changed the text), refine's
    segments and summary, each segment's emotion, the audio events (with the speaker of the
    segment they overlap most), and a record of each stage that ran."""
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
        update["speaker_names"] = with_known_names(refined.speaker_names, transcript)
        update["speaker_roles"] = refined.speaker_roles
        details = {**refined.details, "speaker_names": refined.speaker_names, "speaker_roles": refined.speaker_roles}
        update["stages"].append(StageInfo(stage=Stage.REFINE, engine_id=_engine(refined.details), details=details))
    if redacted is not None:
        details = {**redacted.details, "spans": len(redacted.spans), "audio_key": redacted.audio_key}
        update["stages"].append(StageInfo(stage=Stage.REDACT, engine_id=_engine(redacted.details), details=details))
    current: list[Segment] = update.get("segments", transcript.segments)
    if emotions is not None:
        # Refine keeps segment ids, so the ids emotions were found for still name the same audio.
        by_id = {e.segment: e.emotion for e in emotions.segments}
        update["segments"] = current = [s.model_copy(update={"emotion": by_id.get(s.id)}) for s in current]
        update["stages"].append(StageInfo(stage=Stage.EMOTIONS, engine_id=_engine(emotions.details), details=emotions.details))
    if events is not None:
        update["audio_events"] = [e.model_copy(update={"speaker": _speaker_during(e, current)}) for e in events.events]
        update["stages"].append(StageInfo(stage=Stage.EVENTS, engine_id=_engine(events.details), details=events.details))
    return transcript.model_copy(update=update)


def with_known_names(inferred: dict[str, str], transcript: Transcript) -> dict[str, str]:
    """Names the LLM inferred under the enrolled voices' names, which win. An inferred name
    an enrolled speaker already has is dropped: each label must still tell one speaker."""
    enrolled = {speaker: match.name for speaker, match in transcript.known_speakers.items()}
    taken = set(enrolled.values())
    return {**{s: name for s, name in inferred.items() if name not in taken}, **enrolled}


def _speaker_during(event: AudioEvent, segments: list[Segment]) -> str | None:
    overlaps = [(min(event.end, s.end) - max(event.start, s.start), s.speaker) for s in segments if s.speaker]
    best = max(overlaps, default=(0.0, None), key=lambda o: o[0])
    return best[1] if best[0] > 0 else None


def _engine(details: dict) -> str:
    return str(details.get("engine_id", "unknown"))
