"""ElevenLabs response shapes, document formats and the lenient parsing of /v1/speech-to-text fields."""

from __future__ import annotations

import base64
import io
import json
import math

import pytest

from gateway.elevenlabs.request import parse_convert
from gateway.errors import ApiError
from gateway.forms import FieldError
from shared.entities import ENTITY_TYPES
from shared.formats.documents import ExportOptions, blocks, render
from shared.formats.elevenlabs import ResponseOptions, to_response, whisper_language
from shared.transcript import Segment, Transcript, Word


def _words(spec: list[tuple[str, float, float, float]], speaker: str | None = None, channel: int | None = None) -> list[Word]:
    return [Word(text=t, start=s, end=e, probability=p, speaker=speaker, channel=channel) for t, s, e, p in spec]


def transcript(*, diarized: bool = False) -> Transcript:
    a = _words([("Hello", 0.0, 0.5, 0.9), ("world.", 0.6, 1.0, 0.5)], "SPEAKER_A" if diarized else None)
    b = _words([("Héllo", 3.0, 3.4, 0.8), ("again", 3.5, 4.0, 1.0)], "SPEAKER_B" if diarized else None)
    return Transcript(
        text="Hello world. Héllo again",
        language="en",
        language_probability=0.97,
        duration=4.2,
        segments=[
            Segment(id=0, start=0.0, end=1.0, text="Hello world.", words=a, speaker=a[0].speaker),
            Segment(id=1, start=3.0, end=4.0, text="Héllo again", words=b, speaker=b[0].speaker),
        ],
        words=a + b,
        speakers=["SPEAKER_A", "SPEAKER_B"] if diarized else [],
        model="tiny.en",
    )


def stereo() -> Transcript:
    left = _words([("left", 0.0, 0.4, 0.9), ("side", 0.5, 0.9, 0.9)], "channel_0", 0)
    right = _words([("right", 0.2, 0.6, 0.8)], "channel_1", 1)
    return Transcript(
        text="left side right",
        language="en",
        language_probability=1.0,
        duration=1.0,
        segments=[
            Segment(id=0, start=0.0, end=0.9, text="left side", words=left, speaker="channel_0", channel=0),
            Segment(id=1, start=0.2, end=0.6, text="right", words=right, speaker="channel_1", channel=1),
        ],
        words=sorted(left + right, key=lambda w: w.start),
        speakers=["channel_0", "channel_1"],
        channels=2,
        model="tiny.en",
    )


# --- Chunk ------------------------------------------------------------------------------


def test_chunk_has_required_keys_spacing_and_real_logprobs() -> None:
    body = to_response(transcript(), ResponseOptions(), transcription_id="abc")
    assert body["language_code"] == "eng" and body["language_probability"] == 0.97
    assert body["text"] == "Hello world. Héllo again"
    assert body["transcription_id"] == "abc" and body["audio_duration_secs"] == 4.2
    assert "additional_formats" not in body
    types = [w["type"] for w in body["words"]]
    assert types == ["word", "spacing", "word", "spacing", "word", "spacing", "word"]
    first, space = body["words"][0], body["words"][1]
    assert first == {"text": "Hello", "start": 0.0, "end": 0.5, "type": "word", "speaker_id": None, "logprob": math.log(0.9)}
    assert space["text"] == " " and space["start"] == 0.5 and space["end"] == 0.6 and space["logprob"] == 0.0
    assert all(w["logprob"] <= 0 for w in body["words"])
    assert all("characters" not in w for w in body["words"])


def test_diarized_speakers_become_speaker_n() -> None:
    body = to_response(transcript(diarized=True), ResponseOptions(), transcription_id="x")
    speakers = [w["speaker_id"] for w in body["words"] if w["type"] == "word"]
    assert speakers == ["speaker_0", "speaker_0", "speaker_1", "speaker_1"]


def test_character_granularity_splits_word_spans() -> None:
    body = to_response(transcript(), ResponseOptions(timestamps_granularity="character"), transcription_id="x")
    hello = body["words"][0]
    assert [c["text"] for c in hello["characters"]] == list("Hello")
    assert hello["characters"][0]["start"] == 0.0 and hello["characters"][-1]["end"] == 0.5
    assert body["words"][1]["characters"] == [{"text": " ", "start": 0.5, "end": 0.6}]


def test_no_timestamps_keeps_words_without_times() -> None:
    body = to_response(transcript(), ResponseOptions(timestamps_granularity="none"), transcription_id="x")
    assert [w["text"] for w in body["words"] if w["type"] == "word"] == ["Hello", "world.", "Héllo", "again"]
    assert all(w["start"] is None and w["end"] is None for w in body["words"])


def test_language_probability_is_a_number_when_language_was_forced() -> None:
    t = transcript().model_copy(update={"language_probability": None, "language": "de"})
    body = to_response(t, ResponseOptions(), transcription_id="x")
    assert body["language_code"] == "deu" and body["language_probability"] == 1.0


def test_multichannel_separate_shape() -> None:
    body = to_response(stereo(), ResponseOptions(use_multi_channel=True), transcription_id="x")
    assert set(body) == {"transcripts", "transcription_id", "audio_duration_secs"}
    left, right = body["transcripts"]
    assert left["channel_index"] == 0 and left["text"] == "left side"
    assert right["channel_index"] == 1 and right["text"] == "right"
    assert {w["channel_index"] for w in left["words"]} == {0}
    assert [w["speaker_id"] for w in right["words"]] == ["speaker_1"]
    assert all(k in left for k in ("language_code", "language_probability", "text", "words"))


def test_multichannel_combined_is_one_chunk_ordered_by_time() -> None:
    options = ResponseOptions(use_multi_channel=True, multichannel_output_style="combined")
    body = to_response(stereo(), options, transcription_id="x")
    assert "transcripts" not in body
    words = [(w["text"], w["channel_index"]) for w in body["words"] if w["type"] == "word"]
    assert words == [("left", 0), ("right", 1), ("side", 0)]


def test_whisper_language_accepts_639_1_and_639_3() -> None:
    assert whisper_language("en") == "en" and whisper_language("eng") == "en" and whisper_language("DEU") == "de"
    assert whisper_language("ger") == "de" and whisper_language("jav") == "jw"
    assert whisper_language("xx") is None and whisper_language("zzz") is None


# --- additional formats -----------------------------------------------------------------


def _formats(*items: dict) -> list[dict]:
    options = ResponseOptions(additional_formats=[ExportOptions.model_validate(i) for i in items])
    return to_response(transcript(diarized=True), options, transcription_id="x")["additional_formats"]


def test_srt_defaults_follow_elevenlabs() -> None:
    (srt,) = _formats({"format": "srt"})
    assert srt["requested_format"] == "srt" and srt["file_extension"] == "srt" and not srt["is_base64_encoded"]
    # ElevenLabs' srt default is include_speakers=false; the 2 s silence splits the cues.
    assert "speaker_" not in srt["content"]
    assert "1\n00:00:00,000 --> 00:00:01,000\nHello world.\n" in srt["content"]
    assert "2\n00:00:03,000 --> 00:00:04,000\nHéllo again\n" in srt["content"]


def test_txt_with_speakers_timestamps_and_line_width() -> None:
    (txt,) = _formats({"format": "txt", "include_timestamps": True, "max_characters_per_line": 12})
    assert txt["content_type"] == "text/plain"
    lines = txt["content"].splitlines()
    assert all(len(line) <= 12 or " " not in line for line in lines)
    joined = " ".join(lines)
    assert "speaker_0:" in joined and "speaker_1:" in joined and "Héllo" in joined


def test_segmented_json_segments_on_silence_and_options() -> None:
    (seg,) = _formats({"format": "segmented_json"})
    data = json.loads(seg["content"])
    assert [s["text"] for s in data["segments"]] == ["Hello world.", "Héllo again"]
    assert data["segments"][1]["speaker"] == "speaker_1" and data["segments"][1]["start"] == 3.0
    assert [w["text"] for w in data["segments"][0]["words"]] == ["Hello", "world."]
    (bare,) = _formats(
        {"format": "segmented_json", "include_speakers": False, "include_timestamps": False, "max_segment_chars": 6}
    )
    segments = json.loads(bare["content"])["segments"]
    assert [s["text"] for s in segments] == ["Hello", "world.", "Héllo", "again"]
    assert all("start" not in s and "speaker" not in s for s in segments)


def test_html_is_escaped_document() -> None:
    t = transcript().model_copy(update={"segments": [Segment(id=0, start=0, end=1, text="a <b> & c", words=[])], "words": []})
    html = render(t, ExportOptions(format="html"))["content"]
    assert html.startswith("<!DOCTYPE html>") and "a &lt;b&gt; &amp; c" in html


def test_docx_is_a_real_document() -> None:
    from docx import Document

    (docx,) = _formats({"format": "docx"})
    assert docx["is_base64_encoded"] and docx["file_extension"] == "docx"
    document = Document(io.BytesIO(base64.b64decode(docx["content"])))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "Hello world." in text and "Héllo again" in text and "speaker_1:" in text and "00:00:03.000" in text


def test_pdf_is_a_real_document() -> None:
    from pypdf import PdfReader

    (pdf,) = _formats({"format": "pdf", "include_timestamps": False})
    assert pdf["is_base64_encoded"] and pdf["content_type"] == "application/pdf"
    raw = base64.b64decode(pdf["content"])
    assert raw.startswith(b"%PDF")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(raw)).pages)
    assert "Hello world." in text and "again" in text and "speaker_0:" in text and "00:00" not in text


def test_blocks_respect_duration_limit() -> None:
    assert [b.text for b in blocks(transcript(), ExportOptions(format="html", max_segment_duration_s=0.55))] == [
        "Hello",
        "world.",
        "Héllo",
        "again",
    ]


def test_export_options_reject_bad_values() -> None:
    with pytest.raises(ValueError):
        ExportOptions.model_validate({"format": "vtt"})
    with pytest.raises(ValueError):
        ExportOptions.model_validate({"format": "srt", "max_characters_per_line": 0})


# --- lenient parsing (wire facts 1.3) ---------------------------------------------------


def fields(**values: str | list[str]) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [v] for k, v in values.items()}


SDK_259_NULLS = {"keyterms": "null", "webhook_metadata": "null", "entity_detection": "null", "entity_redaction": "null"}


def test_python_sdk_259_literal_nulls_are_absent() -> None:
    request = parse_convert(fields(model_id="scribe_v1", **SDK_259_NULLS))
    assert request.keyterms == [] and request.webhook_metadata is None


def test_json_encoded_keyterms_list() -> None:
    assert parse_convert(fields(model_id="scribe_v1", keyterms='["Dalston","Hackney"]')).keyterms == ["Dalston", "Hackney"]


def test_repeated_keyterms_fields() -> None:
    request = parse_convert(fields(model_id="scribe_v1", keyterms=["Dalston", "Hackney"]))
    assert request.keyterms == ["Dalston", "Hackney"]
    assert request.hotwords() == "Dalston, Hackney"


def test_bracketed_keys() -> None:
    assert parse_convert({"model_id": ["scribe_v1"], "keyterms[]": ["a", "b"]}).keyterms == ["a", "b"]


def test_webhook_metadata_object_and_double_encoded_string() -> None:
    assert parse_convert(fields(model_id="m", webhook="true", webhook_metadata='{"k":1}')).webhook_metadata == {"k": 1}
    double = json.dumps(json.dumps({"k": 1}))
    assert parse_convert(fields(model_id="m", webhook="true", webhook_metadata=double)).webhook_metadata == {"k": 1}


def test_webhook_metadata_limits() -> None:
    with pytest.raises(FieldError):
        parse_convert(fields(model_id="m", webhook_metadata='{"a":{"b":{"c":1}}}'))
    with pytest.raises(FieldError):
        parse_convert(fields(model_id="m", webhook_metadata='"not an object"'))


def test_json_quoted_strings_are_decoded() -> None:
    request = parse_convert(fields(model_id='"scribe_v1"', timestamps_granularity='"character"'))
    assert request.model_id == "scribe_v1" and request.timestamps_granularity == "character"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("true", True), ("True", True), ("TRUE", True), ("1", True), ("false", False), ("False", False), ("0", False)],
)
def test_booleans_any_case(raw: str, expected: bool) -> None:
    assert parse_convert(fields(model_id="m", diarize=raw)).diarize is expected


def test_unknown_and_legacy_fields_are_ignored() -> None:
    request = parse_convert(fields(model_id="m", biased_keywords='["x"]', something_new="1"))
    assert request.model_id == "m"


def test_additional_formats_as_json_part_and_repeated_objects() -> None:
    one = parse_convert(fields(model_id="m", additional_formats='[{"format":"srt"},{"format":"pdf","include_timestamps":false}]'))
    assert [f.format for f in one.additional_formats] == ["srt", "pdf"] and not one.additional_formats[1].include_timestamps
    two = parse_convert(fields(model_id="m", additional_formats=['{"format":"txt"}', '{"format":"docx"}']))
    assert [f.format for f in two.additional_formats] == ["txt", "docx"]
    assert two.additional_formats[0].max_characters_per_line == 100


def test_language_code_three_letters_maps_to_whisper() -> None:
    assert parse_convert(fields(model_id="m", language_code="eng")).language == "en"
    assert parse_convert(fields(model_id="m", language_code="null")).language is None


@pytest.mark.parametrize(
    "bad",
    [
        {},  # no model_id: also what a Python SDK retry sends
        {"model_id": "m", "timestamps_granularity": "sentence"},
        {"model_id": "m", "diarize": "maybe"},
        {"model_id": "m", "num_speakers": "33"},
        {"model_id": "m", "diarization_threshold": "0.3"},  # needs diarize=true
        {"model_id": "m", "diarize": "true", "num_speakers": "2", "diarization_threshold": "0.3"},
        {"model_id": "m", "temperature": "3"},
        {"model_id": "m", "seed": "-1"},
        {"model_id": "m", "file_format": "mp3"},
        {"model_id": "m", "additional_formats": '[{"format":"vtt"}]'},
        {"model_id": "m", "additional_formats": '["srt"]'},
        {"model_id": "m", "additional_formats": json.dumps([{"format": "txt"}] * 11)},
        {"model_id": "m", "keyterms": '["a{b}"]'},
        {"model_id": "m", "keyterms": '["one two three four five six"]'},
        {"model_id": "m", "language_code": "klingon"},
        {"model_id": "m", "multichannel_output_style": "mixed"},
        {"model_id": "m", "diarize": "true", "use_multi_channel": "true"},
        {"model_id": "m", "webhook_id": "abc"},
    ],
)
def test_invalid_fields_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises((FieldError, ApiError)) as caught:
        parse_convert(fields(**bad))
    error = caught.value
    assert isinstance(error, FieldError) or error.code in ("invalid_parameter", "invalid_language")


@pytest.mark.parametrize(
    "unsupported",
    [
        {"numbers_format": "digits"},
        {"transcript_edit": "true"},
    ],
)
def test_features_we_cannot_do_are_refused_clearly(unsupported: dict) -> None:
    with pytest.raises(ApiError) as caught:
        parse_convert(fields(model_id="m", **unsupported))
    assert caught.value.code == "feature_unavailable" and "not available" in caught.value.message


def test_use_speaker_library_needs_diarize_and_names_speakers_in_the_response() -> None:
    with pytest.raises(ApiError) as caught:
        parse_convert(fields(model_id="m", use_speaker_library="True"))
    assert "diarize=true" in caught.value.message
    request = parse_convert(fields(model_id="m", diarize="true", use_speaker_library="True"))
    assert request.use_speaker_library and request.response_options().use_speaker_library


def test_unsupported_features_switched_off_are_fine() -> None:
    request = parse_convert(fields(model_id="m", no_verbatim="false", entity_detection="null", tag_audio_events="false"))
    assert request.tag_audio_events is False


# --- entity detection and redaction (every form the SDKs send) ------------------------------


@pytest.mark.parametrize(
    "given",
    [
        {"entity_detection": '"all"'},  # Python SDK v2.59: JSON-serialised string
        {"entity_detection": "all"},  # a bare string (curl)
        {"entity_detection": '["all"]'},  # v2.59 with a list
        {"entity_detection": ["pii", "pci", "phi", "other"]},  # repeated fields (JS SDK, Python <= 2.58)
        {"entity_detection[]": ["all"]},
        {"entity_detection": "pii,pci,phi,other"},
    ],
)
def test_entity_detection_forms(given: dict) -> None:
    request = parse_convert(fields(model_id="m", **given))
    assert request.entity_detection is not None and set(request.entity_detection) == set(ENTITY_TYPES)
    enrich = request.enrich(events_available=False)
    assert enrich is not None and enrich.pii_detection and enrich.redact_pii_text is None
    assert request.response_options().entity_redaction is None


def test_entity_detection_of_one_category_and_types() -> None:
    assert parse_convert(fields(model_id="m", entity_detection='"pci"')).entity_detection == ["credit_card", "iban"]
    request = parse_convert(fields(model_id="m", entity_detection='["email_address","phone_number"]'))
    assert request.entity_detection == ["email_address", "phone_number"]


def test_entity_redaction_defaults_to_enumerated_and_maps_to_the_enrichment() -> None:
    request = parse_convert(fields(model_id="m", entity_detection='"all"', entity_redaction='"pci"'))
    assert request.entity_redaction == ["credit_card", "iban"]
    options = request.response_options()
    assert options.entity_redaction == ["credit_card", "iban"] and options.entity_redaction_mode == "enumerated_entity_type"
    enrich = request.enrich(events_available=False)
    assert enrich is not None and enrich.redact_pii_text == "enumerated_entity_type"
    mode = parse_convert(fields(model_id="m", entity_detection="all", entity_redaction="all", entity_redaction_mode="redacted"))
    assert mode.response_options().entity_redaction_mode == "redacted"


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ({"entity_detection": '"passport"'}, "passport"),
        ({"entity_detection": '["person_name","shoe_size"]'}, "shoe_size"),
        ({"entity_redaction": '"all"'}, "subset"),
        ({"entity_detection": '"pci"', "entity_redaction": '"pii"'}, "person_name"),
        ({"entity_detection": '"all"', "entity_redaction": '"all"', "entity_redaction_mode": "masked"}, "entity_redaction_mode"),
    ],
)
def test_bad_entity_options_are_refused(given: dict, needle: str) -> None:
    with pytest.raises((FieldError, ApiError)) as caught:
        parse_convert(fields(model_id="m", **given))
    assert needle in str(caught.value) or needle in getattr(caught.value, "message", "")


def test_no_verbatim_maps_to_the_refine_stage() -> None:
    enrich = parse_convert(fields(model_id="m", no_verbatim="true")).enrich(events_available=False)
    assert enrich is not None and enrich.no_verbatim and enrich.refine
    assert parse_convert(fields(model_id="m", no_verbatim="false")).enrich(events_available=False) is None
