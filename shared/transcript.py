"""The canonical transcript: what every pipeline produces and every output format reads.

Every external format (native JSON, ElevenLabs, OpenAI, SRT, VTT, DOCX, PDF, ...) is a pure
function of `Transcript` (see shared/formats/).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Word(BaseModel):
    text: str
    start: float
    end: float
    probability: float | None = None
    speaker: str | None = None
    channel: int | None = None
    # A word the refine stage's LLM added (it was not heard): it has no real timestamp, its
    # start = end sit at the boundary of the words around it.
    generated: bool = False


class Emotion(BaseModel):
    """A segment's emotion as the emotions stage heard it (emotion2vec's classes)."""

    label: str  # angry | disgusted | fearful | happy | neutral | other | sad | surprised | unknown
    confidence: float
    scores: dict[str, float] = Field(default_factory=dict)  # every class's probability


class Segment(BaseModel):
    id: int
    start: float
    end: float
    text: str
    words: list[Word] = Field(default_factory=list)
    speaker: str | None = None
    channel: int | None = None
    # Raw decoder values, as the model produced them.
    seek: int | None = None  # Whisper's decoding-window offset, in mel frames
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    compression_ratio: float | None = None
    temperature: float | None = None
    tokens: list[int] = Field(default_factory=list)
    emotion: Emotion | None = None  # set by the emotions stage, when asked for


class Entity(BaseModel):
    """Sensitive information found in the transcript (the detect stage), as the transcript says it."""

    type: str  # an id of shared.entities.ENTITY_TYPES, e.g. "credit_card"
    category: str  # pii | pci | phi | other
    text: str  # Transcript.text[start_char:end_char]
    start_char: int
    end_char: int
    start: float  # seconds: from the first word's start ...
    end: float  # ... to the last word's end
    confidence: float
    speaker: str | None = None
    channel: int | None = None
    first_word: int  # index into Transcript.words
    last_word: int  # inclusive


class AudioEvent(BaseModel):
    """A non-speech sound the events stage found, e.g. laughter from 12.3 s to 13.1 s."""

    type: str  # an id of shared.audio_events.EVENT_TYPES, e.g. "laughter"
    start: float
    end: float
    confidence: float  # the highest frame probability in the span
    speaker: str | None = None  # who was speaking then, when speakers are known


class SpeakerMatch(BaseModel):
    """An enrolled voice (POST /v1/speakers) a diarized speaker was matched to."""

    id: str  # the speaker library's id
    name: str
    similarity: float  # cosine similarity of the two voiceprints


class StageInfo(BaseModel):
    stage: str
    engine_id: str
    duration_ms: float | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class Transcript(BaseModel):
    text: str
    language: str
    language_probability: float | None
    duration: float
    segments: list[Segment]
    words: list[Word]
    speakers: list[str] = Field(default_factory=list)
    channels: int = 1
    model: str
    stages: list[StageInfo] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    entities: list[Entity] | None = None  # None: detection was not asked for; [] found nothing
    summary: str | None = None  # the refine stage's, when asked for
    # Names from the pipeline ({"speaker_0": "Margaret"}): enrolled voices the diarizer
    # matched (`known_speakers`), else names the refine stage inferred from context. Readers
    # apply them under the user's own names (JobParameters.speaker_names wins).
    speaker_names: dict[str, str] = Field(default_factory=dict)
    # Speakers matched to the tenant's enrolled voices, keyed like speaker_names.
    known_speakers: dict[str, SpeakerMatch] = Field(default_factory=dict)
    # Roles the refine stage inferred from context ({"speaker_0": "agent", "speaker_1": "customer"}),
    # when asked (ElevenLabs detect_speaker_roles); keyed like speaker_names.
    speaker_roles: dict[str, str] = Field(default_factory=dict)
    audio_events: list[AudioEvent] | None = None  # None: event detection was not asked for
