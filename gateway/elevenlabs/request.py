"""The multipart fields of `POST /v1/speech-to-text`, parsed leniently into one object.

Every field of the current API is read here (wire facts 1.2) with `gateway.forms`, which
handles the encodings real clients use (1.3). Fields that ask for something Dalston cannot
do yet are refused with a clear 4xx; fields that only tune the service are accepted (see
README, "ElevenLabs API").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError

from gateway.elevenlabs.errors import invalid
from gateway.errors import ApiError
from gateway.forms import FieldError, Fields, FieldSource, get_bool, get_float, get_int, get_json, get_list, get_str
from shared import entities
from shared.contracts import EnrichOptions
from shared.formats.documents import ExportOptions
from shared.formats.elevenlabs import ResponseOptions, whisper_language
from shared.formats.redaction import DEFAULT_STYLE, STYLES, RedactionStyle

MAX_ADDITIONAL_FORMATS = 10
MAX_KEYTERMS = 1000
MAX_KEYTERM_CHARS = 50
MAX_KEYTERM_WORDS = 5
KEYTERM_FORBIDDEN = set("<>{}[]\\")
MAX_WEBHOOK_METADATA_BYTES = 16 * 1024
MAX_WEBHOOK_METADATA_DEPTH = 2


@dataclass(frozen=True)
class ConvertRequest:
    model_id: str
    cloud_storage_url: str | None = None
    source_url: str | None = None
    language: str | None = None  # the Whisper code for language_code
    tag_audio_events: bool = True
    num_speakers: int | None = None
    timestamps_granularity: Literal["none", "word", "character"] = "word"
    diarize: bool = False
    diarization_threshold: float | None = None
    additional_formats: list[ExportOptions] = field(default_factory=list)
    file_format: Literal["pcm_s16le_16", "other"] = "other"
    webhook: bool = False
    webhook_id: str | None = None
    webhook_metadata: dict[str, Any] | None = None
    temperature: float | None = None
    seed: int | None = None
    use_multi_channel: bool = False
    multichannel_output_style: Literal["separate", "combined"] = "separate"
    keyterms: list[str] = field(default_factory=list)
    entity_detection: list[str] | None = None  # entity type ids (None: not asked)
    entity_redaction: list[str] | None = None  # a subset of entity_detection
    entity_redaction_mode: RedactionStyle = DEFAULT_STYLE
    no_verbatim: bool = False
    detect_speaker_roles: bool = False
    use_speaker_library: bool = False  # name speakers after the tenant's enrolled voices (/v1/speakers)

    @property
    def url(self) -> str | None:
        return self.source_url or self.cloud_storage_url

    def response_options(self) -> ResponseOptions:
        return ResponseOptions(
            timestamps_granularity=self.timestamps_granularity,
            additional_formats=self.additional_formats,
            use_multi_channel=self.use_multi_channel,
            multichannel_output_style=self.multichannel_output_style,
            entity_redaction=self.entity_redaction,
            entity_redaction_mode=self.entity_redaction_mode,
            tag_audio_events=self.tag_audio_events,
            detect_speaker_roles=self.detect_speaker_roles,
            use_speaker_library=self.use_speaker_library,
        )

    def hotwords(self) -> str | None:
        """Keyterms become faster-whisper's hotwords, which prefix every decoding window's
        prompt and so bias Whisper towards those spellings (a bias, not a guarantee)."""
        return ", ".join(self.keyterms) if self.keyterms else None

    def enrich(self, *, events_available: bool) -> EnrichOptions | None:
        """The enrichment stages this request needs (detect for entities, refine for no_verbatim
        and detect_speaker_roles, events for tag_audio_events). tag_audio_events is on by default
        in every SDK, so a server without an event model answers it with the transcript alone
        rather than refusing it."""
        given: dict[str, Any] = {}
        if self.tag_audio_events and events_available:
            given["detect_events"] = True
        if self.entity_detection is not None:
            given["pii_detection"] = True
            given["pii_entity_types"] = self.entity_detection
        if self.entity_redaction is not None:
            given["redact_pii_text"] = self.entity_redaction_mode
        if self.no_verbatim:
            given["no_verbatim"] = True
        if self.detect_speaker_roles:
            given["speaker_roles"] = True
        return EnrichOptions(**given) if given else None


def _choice(fields: Fields, name: str, choices: tuple[str, ...], default: str) -> str:
    value = get_str(fields, name)
    if value is None:
        return default
    if value.lower() not in choices:
        raise FieldError(name, f"must be one of {', '.join(choices)}, not {value!r}")
    return value.lower()


def _additional_formats(fields: Fields) -> list[ExportOptions]:
    items = get_list(fields, "additional_formats")
    if len(items) > MAX_ADDITIONAL_FORMATS:
        raise FieldError("additional_formats", f"at most {MAX_ADDITIONAL_FORMATS} formats, got {len(items)}")
    formats = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FieldError("additional_formats", f'item {i} must be an object like {{"format": "srt"}}, got {item!r}')
        try:
            formats.append(ExportOptions.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise FieldError("additional_formats", f"item {i}: {where}: {first['msg']}") from None
    return formats


def _keyterms(fields: Fields) -> list[str]:
    terms = [str(t).strip() for t in get_list(fields, "keyterms") if str(t).strip()]
    if len(terms) > MAX_KEYTERMS:
        raise FieldError("keyterms", f"at most {MAX_KEYTERMS} terms, got {len(terms)}")
    for term in terms:
        if len(term) >= MAX_KEYTERM_CHARS or len(term.split()) > MAX_KEYTERM_WORDS:
            raise FieldError(
                "keyterms",
                f"each term must be under {MAX_KEYTERM_CHARS} characters and at most {MAX_KEYTERM_WORDS} words: {term!r}",
            )
        if KEYTERM_FORBIDDEN & set(term):
            raise FieldError("keyterms", f"terms may not contain any of < > {{ }} [ ] \\: {term!r}")
    return terms


def parse_entity_types(fields: FieldSource, name: str) -> list[str] | None:
    """`all`, a category or types, in every form the SDKs send (a JSON string such as
    `"all"`, a JSON list, a bare string, repeated fields, comma lists; `null` is absent)."""
    requested = [part.strip() for value in get_list(fields, name) for part in str(value).split(",") if part.strip()]
    if not requested:
        return None
    try:
        return entities.select(requested)
    except ValueError as exc:
        raise FieldError(name, str(exc)) from None


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _webhook_metadata(fields: Fields) -> dict[str, Any] | None:
    value = get_json(fields, "webhook_metadata")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise FieldError("webhook_metadata", "must be a JSON object")
    if len(json.dumps(value).encode()) > MAX_WEBHOOK_METADATA_BYTES:
        raise FieldError("webhook_metadata", f"must be at most {MAX_WEBHOOK_METADATA_BYTES} bytes of JSON")
    if _depth(value) > MAX_WEBHOOK_METADATA_DEPTH:
        raise FieldError("webhook_metadata", f"may nest at most {MAX_WEBHOOK_METADATA_DEPTH} levels deep")
    return value


def _unavailable(message: str) -> ApiError:
    return ApiError(400, "feature_unavailable", message)


def _refuse_unsupported(fields: Fields) -> None:
    """Options whose output Dalston cannot produce yet: refused, never silently dropped."""
    for name in ("numbers_format", "transcript_edit"):
        if get_str(fields, name) is not None:
            raise _unavailable(f"{name} is not available on this server yet; omit it")


def parse_convert(fields: Fields) -> ConvertRequest:
    """Raises `FieldError`/`ApiError` (422 in ElevenLabs' shape) for anything unusable."""
    model_id = get_str(fields, "model_id")
    if model_id is None:
        # Also what a Python SDK retry looks like: it re-sends the file without the form fields.
        raise invalid("model_id is required (e.g. scribe_v1)")

    language = None
    code = get_str(fields, "language_code")
    if code is not None:
        language = whisper_language(code)
        if language is None:
            raise ApiError(
                400, "invalid_language", f"language_code {code!r} is not an ISO 639-1 or 639-3 code of a supported language"
            )

    diarize = get_bool(fields, "diarize", False)
    num_speakers = get_int(fields, "num_speakers", minimum=1, maximum=32)
    threshold = get_float(fields, "diarization_threshold", minimum=0.1, maximum=0.4)
    if threshold is not None and (not diarize or num_speakers is not None):
        raise invalid("diarization_threshold is only valid with diarize=true and without num_speakers")

    use_multi_channel = get_bool(fields, "use_multi_channel", False)
    if diarize and use_multi_channel:
        raise invalid("use either diarize or use_multi_channel, not both")
    detect_speaker_roles = get_bool(fields, "detect_speaker_roles", False)
    if detect_speaker_roles and use_multi_channel:
        raise invalid("detect_speaker_roles does not work with use_multi_channel; send diarize=true instead")
    if detect_speaker_roles and not diarize:
        raise invalid("detect_speaker_roles needs diarize=true")
    use_speaker_library = get_bool(fields, "use_speaker_library", False)
    if use_speaker_library and not diarize:
        raise invalid("use_speaker_library needs diarize=true: only diarized speakers are matched to the speaker library")

    _refuse_unsupported(fields)
    detection = parse_entity_types(fields, "entity_detection")
    redaction = parse_entity_types(fields, "entity_redaction")
    if redaction is not None:
        if detection is None:
            raise invalid("entity_redaction must be a subset of entity_detection; entity_detection is not set")
        outside = [t for t in redaction if t not in detection]
        if outside:
            raise invalid(f"entity_redaction must be a subset of entity_detection; not detected: {', '.join(outside)}")
    redaction_mode: RedactionStyle = _choice(fields, "entity_redaction_mode", STYLES, DEFAULT_STYLE)  # type: ignore[assignment]
    webhook = get_bool(fields, "webhook", False)
    webhook_id = get_str(fields, "webhook_id")
    if webhook_id is not None and not webhook:
        raise invalid("webhook_id is only meaningful with webhook=true")

    return ConvertRequest(
        model_id=model_id,
        cloud_storage_url=get_str(fields, "cloud_storage_url"),
        source_url=get_str(fields, "source_url"),
        language=language,
        tag_audio_events=get_bool(fields, "tag_audio_events", True),
        num_speakers=num_speakers,
        timestamps_granularity=_choice(fields, "timestamps_granularity", ("none", "word", "character"), "word"),  # type: ignore[arg-type]
        diarize=diarize,
        diarization_threshold=threshold,
        additional_formats=_additional_formats(fields),
        file_format=_choice(fields, "file_format", ("pcm_s16le_16", "other"), "other"),  # type: ignore[arg-type]
        webhook=webhook,
        webhook_id=webhook_id,
        webhook_metadata=_webhook_metadata(fields),
        temperature=get_float(fields, "temperature", minimum=0.0, maximum=2.0),
        seed=get_int(fields, "seed", minimum=0, maximum=2_147_483_647),
        use_multi_channel=use_multi_channel,
        multichannel_output_style=_choice(fields, "multichannel_output_style", ("separate", "combined"), "separate"),  # type: ignore[arg-type]
        keyterms=_keyterms(fields),
        entity_detection=detection,
        entity_redaction=redaction,
        entity_redaction_mode=redaction_mode,
        no_verbatim=get_bool(fields, "no_verbatim", False),
        detect_speaker_roles=detect_speaker_roles,
        use_speaker_library=use_speaker_library,
    )
