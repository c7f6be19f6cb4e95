"""Realtime parameters, audio decoding and the ElevenLabs <-> native translation."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest
from pydantic import ValidationError
from starlette.datastructures import QueryParams

from gateway.elevenlabs.realtime import ElevenLabsEdge
from gateway.realtime.edge import Refused
from gateway.realtime.native import NativeEdge
from realtime_worker.asr import BackendUnavailable, ParakeetBackend
from realtime_worker.audio import MULAW, AudioDecoder, InvalidAudio
from shared import entities
from shared.realtime import protocol as p
from shared.settings import Settings

SETTINGS = Settings(realtime_max_chunk_bytes=1000)


def test_session_params_defaults_and_limits() -> None:
    params = p.SessionParams.model_validate({})
    assert (params.encoding, params.sample_rate, params.vad, params.interim_results) == ("pcm_s16le", 16000, True, True)
    assert p.SessionParams.model_validate({"vad": "False", "word_timestamps": "1"}).vad is False
    for bad in (
        {"sample_rate": "7999"},
        {"sample_rate": "48001"},
        {"encoding": "mulaw", "sample_rate": "16000"},
        {"encoding": "opus"},
        {"vad_threshold": "2"},
    ):
        with pytest.raises(ValidationError):
            p.SessionParams.model_validate(bad)
    # Round trip through the worker's query string.
    params = p.SessionParams(encoding="mulaw", sample_rate=8000, word_timestamps=True, language="en")
    assert p.SessionParams.model_validate(params.query()) == params


def test_resolve_model() -> None:
    settings = Settings()
    assert p.resolve_model(p.SessionParams(), settings) == "tiny.en"
    assert p.resolve_model(p.SessionParams(model="whisper-1"), settings) == "tiny.en"
    assert p.resolve_model(p.SessionParams(variant="fast"), settings) == settings.realtime_variants["fast"]


def test_mulaw_table_matches_g711() -> None:
    # Reference points of the G.711 mu-law expansion (16-bit linear values).
    reference = {0x00: -32124, 0x0F: -16764, 0x7F: 0, 0x80: 32124, 0xF0: 120, 0xFF: 0}
    for byte, linear in reference.items():
        assert MULAW[byte] * 32768 == pytest.approx(linear), hex(byte)
    assert np.all(np.diff(MULAW[0x80:]) < 0) and np.all(np.diff(MULAW[:0x80]) > 0)


def test_decoder_resamples_pcm_to_16k_and_rejects_half_samples() -> None:
    tone = (np.sin(2 * math.pi * 440 * np.arange(44100) / 44100) * 16000).astype("<i2")
    decoder = AudioDecoder("pcm_s16le", 44100)
    out = np.concatenate([decoder.decode(chunk.tobytes()) for chunk in np.array_split(tone, 10)])
    assert 15500 < out.size <= 16000  # the streaming resampler holds back ~20 ms
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * 16000 / out.size
    assert peak_hz == pytest.approx(440, abs=2)
    assert decoder.duration(tone.tobytes()) == pytest.approx(1.0)
    with pytest.raises(InvalidAudio, match="whole 16-bit samples"):
        decoder.decode(b"\x00\x01\x02")
    assert AudioDecoder("mulaw", 8000).duration(b"\xff" * 800) == pytest.approx(0.1)


def test_parakeet_without_weights_fails_clearly() -> None:
    with pytest.raises(BackendUnavailable, match="DALSTON_PARAKEET_MODELS"):
        ParakeetBackend("parakeet-tdt-0.6b-v2", Settings())


def el(query: dict[str, str]) -> ElevenLabsEdge:
    return ElevenLabsEdge(query, SETTINGS)


def test_elevenlabs_query_maps_to_native_params() -> None:
    edge = el(
        {
            "model_id": "scribe_v2_realtime",
            "audio_format": "ulaw_8000",
            "commit_strategy": "vad",
            "vad_silence_threshold_secs": "0.8",
            "vad_threshold": "0.3",
            "min_speech_duration_ms": "250",
            "include_timestamps": "True",
            "language_code": "eng",
            "unknown_param": "ignored",
        }
    )
    params = edge.params
    assert (params.encoding, params.sample_rate, params.vad, params.endpoint_ms) == ("mulaw", 8000, True, 800)
    assert (params.vad_threshold, params.min_speech_ms, params.word_timestamps, params.language) == (0.3, 250, True, "en")
    assert params.max_utterance_s == 90.0
    # Legacy `encoding` and `sample_rate`; manual commit is the default.
    assert el({"model_id": "scribe_v2_realtime", "encoding": "pcm_24000"}).params.sample_rate == 24000
    legacy = el({"model_id": "scribe_v2_realtime", "sample_rate": "22050"}).params
    assert legacy.sample_rate == 22050 and legacy.vad is False


@pytest.mark.parametrize(
    "query, fragment",
    [
        ({}, "model_id is required"),
        ({"model_id": "nope"}, "The model_id 'nope' is invalid"),
        ({"model_id": "scribe_v2_realtime", "audio_format": "pcm_11025"}, "audio_format"),
        ({"model_id": "scribe_v2_realtime", "commit_strategy": "auto"}, "commit_strategy"),
        ({"model_id": "scribe_v2_realtime", "vad_silence_threshold_secs": "5"}, "between 0.3 and 3"),
        ({"model_id": "scribe_v2_realtime", "include_timestamps": "sure"}, "include_timestamps"),
        ({"model_id": "scribe_v2_realtime", "language_code": "klingon"}, "language_code"),
    ],
)
def test_elevenlabs_bad_query_is_refused(query: dict[str, str], fragment: str) -> None:
    with pytest.raises(Refused, match=fragment) as info:
        el(query)
    assert info.value.code == p.INVALID_REQUEST and info.value.close_code == 1008


@pytest.mark.parametrize(
    "query, expected",
    [
        ("model_id=scribe_v2_realtime", None),
        (
            "model_id=scribe_v2_realtime&entity_detection=phone_number&entity_detection=email_address",
            ["phone_number", "email_address"],
        ),
        ("model_id=scribe_v2_realtime&entity_detection=pci", entities.select(["pci"])),
        ("model_id=scribe_v2_realtime&entity_detection=%22all%22", entities.select(["all"])),
    ],
)
def test_elevenlabs_entity_detection_is_read_from_repeated_query_parameters(query: str, expected: list[str] | None) -> None:
    pytest.importorskip("presidio_analyzer", reason="the `pii` extra is not installed")
    edge = ElevenLabsEdge(QueryParams(query), SETTINGS)
    assert edge.entity_types == expected
    assert edge.worker_message(p.SessionBegin(session_id="s", config=edge.params))[0]["config"]["entity_detection"] == expected


def test_elevenlabs_entity_detection_without_the_pii_extra_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.elevenlabs.realtime as realtime

    monkeypatch.setattr(realtime, "missing_extra", lambda: "entity detection needs the 'pii' extra")
    with pytest.raises(Refused, match="entity_detection is not available on this server.*'pii' extra") as info:
        el({"model_id": "scribe_v2_realtime", "entity_detection": "all"})
    assert info.value.code == p.INVALID_REQUEST
    assert el({"model_id": "scribe_v2_realtime"}).entity_types is None  # not asked: never checked


def test_elevenlabs_client_messages() -> None:
    edge = el({"model_id": "scribe_v2_realtime"})
    audio = b"\x01\x00" * 100
    chunk = {
        "message_type": "input_audio_chunk",
        "audio_base_64": base64.b64encode(audio).decode(),
        "commit": False,
        "sample_rate": 16000,
    }
    assert edge.client_text(json.dumps({**chunk, "previous_text": "context"})) == (
        [json.dumps({"type": "config", "prompt": "context"}), audio],
        [],
    )
    # The Python SDK sends previous_text: null on every chunk; a real value later is an error.
    assert edge.client_text(json.dumps({**chunk, "previous_text": None})) == ([audio], [])
    _, errors = edge.client_text(json.dumps({**chunk, "previous_text": "late"}))
    assert errors[0]["message_type"] == "input_error"
    assert edge.client_text(json.dumps({**chunk, "audio_base_64": "", "commit": True})) == ([json.dumps({"type": "flush"})], [])
    assert edge.client_text(json.dumps({"message_type": "commit"})) == ([json.dumps({"type": "flush"})], [])
    assert edge.client_text(json.dumps({"audio_base_64": chunk["audio_base_64"]})) == ([audio], [])  # message_type omitted
    for bad, kind in [
        ("{", "input_error"),
        ("[]", "input_error"),
        (json.dumps({"message_type": "nope"}), "input_error"),
        (json.dumps({**chunk, "audio_base_64": "***"}), "input_error"),
        (json.dumps({**chunk, "sample_rate": 8000}), "input_error"),
        (json.dumps({**chunk, "audio_base_64": base64.b64encode(b"\0" * 2000).decode()}), "chunk_size_exceeded"),
    ]:
        forward, errors = edge.client_text(bad)
        assert forward == [] and errors[0]["message_type"] == kind and errors[0]["error"], bad
    assert edge.client_bytes(b"\0\0")[1][0]["message_type"] == "input_error"


def test_elevenlabs_server_messages() -> None:
    edge = el({"model_id": "scribe_v2_realtime", "include_timestamps": "true", "commit_strategy": "vad"})
    started = edge.worker_message(p.SessionBegin(session_id="abc", config=p.SessionParams()))[0]
    assert started["message_type"] == "session_started" and started["session_id"] == "abc"
    assert started["config"]["commit_strategy"] == started["config"]["vad_commit_strategy"] == "vad"
    assert started["config"]["audio_format"] == "pcm_16000" and started["config"]["sample_rate"] == 16000
    assert edge.worker_message(p.TranscriptPartial(utterance_id=0, text="hel", start=0.0, end=0.3)) == [
        {"message_type": "partial_transcript", "text": "hel"}
    ]
    assert edge.worker_message(p.SpeechStart(timestamp=0.1)) == []
    final = p.TranscriptFinal(
        utterance_id=0,
        text="hello world",
        start=0.1,
        end=0.9,
        language="en",
        reason="vad",
        latency_ms=50.0,
        words=[
            p.StreamWord(word="hello", start=0.1, end=0.4, probability=0.9),
            p.StreamWord(word="world", start=0.5, end=0.9, probability=1.0),
        ],
    )
    committed, stamped = edge.worker_message(final)
    assert committed == {"message_type": "committed_transcript", "text": "hello world"}
    assert stamped["message_type"] == "committed_transcript_with_timestamps" and stamped["language_code"] == "eng"
    assert [w["type"] for w in stamped["words"]] == ["word", "spacing", "word"]
    assert stamped["words"][0]["logprob"] == pytest.approx(math.log(0.9))
    error = edge.worker_message(p.error(p.LAG_EXCEEDED, "behind", fatal=True))[0]
    assert error == {"message_type": "queue_overflow", "error": "behind", "message": "behind"}
    without = el({"model_id": "scribe_v2_realtime"})
    assert len(without.worker_message(final)) == 1


def test_native_edge_passes_frames_through() -> None:
    edge = NativeEdge({"sample_rate": "24000", "api_key": "k"}, SETTINGS)
    assert edge.params.sample_rate == 24000
    assert edge.client_bytes(b"ab") == ([b"ab"], []) and edge.client_text('{"type":"flush"}') == (['{"type":"flush"}'], [])
    with pytest.raises(Refused, match="sample_rate"):
        NativeEdge({"sample_rate": "abc"}, SETTINGS)


def test_server_messages_round_trip_with_absent_fields_left_out() -> None:
    final = p.TranscriptFinal(utterance_id=3, text="hi", start=0.5, end=0.9, language=None, reason="commit", latency_ms=12.5)
    wire = json.loads(final.model_dump_json())
    assert wire == {
        "type": "transcript.final",
        "utterance_id": 3,
        "text": "hi",
        "start": 0.5,
        "end": 0.9,
        "language": None,  # null on the wire, unlike `words`, which is absent without word_timestamps
        "reason": "commit",
        "latency_ms": 12.5,
    }
    with_id = p.SessionBegin(session_id="s", config=p.SessionParams(model="tiny.en", session_id="s"))
    assert "session_id" not in json.loads(with_id.model_dump_json())["config"]
    begin = with_id.model_copy(update={"config": p.SessionParams(model="tiny.en")})
    end = p.SessionEnd(session_id="s", stats=p.SessionStats(finals=1))
    assert set(json.loads(end.model_dump_json())) == {"type", "session_id", "stats"}
    lost = p.error(p.WORKER_LOST, "gone", fatal=True).model_copy(update={"enhancement_job_id": "j"})
    assert json.loads(lost.model_dump_json()) == {
        "type": "error",
        "code": "worker_lost",
        "message": "gone",
        "fatal": True,
        "enhancement_job_id": "j",
    }
    for msg in (final, begin, end, lost, p.SpeechStart(timestamp=1.0), p.WarningMessage(code="lag", message="behind")):
        assert p.parse_server_message(msg.model_dump_json()) == msg
        assert p.parse_server_message(msg.model_dump(mode="json")) == msg
    with pytest.raises(ValidationError):
        p.parse_server_message('{"type": "transcript.maybe", "text": "?"}')


def test_every_realtime_backend_has_a_loader() -> None:
    from realtime_worker.asr import BACKENDS
    from shared.catalogue import REALTIME_BACKENDS

    assert set(BACKENDS) == set(REALTIME_BACKENDS)


def test_elevenlabs_worker_lost_error_carries_the_enhancement() -> None:
    lost = p.error(p.WORKER_LOST, "gone", fatal=True).model_copy(update={"enhancement_job_id": "j"})
    assert el({"model_id": "scribe_v2_realtime"}).worker_message(lost) == [
        {"message_type": "transcriber_error", "error": "gone", "message": "gone", "enhancement_job_id": "j"}
    ]
    ended = p.SessionEnd(session_id="s", stats=p.SessionStats(), enhancement_error="nothing recorded")
    assert el({"model_id": "scribe_v2_realtime"}).worker_message(ended) == [
        {"message_type": "session_ended", "session_id": "s", "enhancement_error": "nothing recorded"}
    ]
