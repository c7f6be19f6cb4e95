"""The OpenAI Realtime (transcription) edge: session.update shapes, errors in OpenAI's shape,
G.711 conversion and the events of a turn. Emitted events are validated with the `openai`
SDK's own models."""

from __future__ import annotations

import base64
import json
import math
import warnings
from typing import Any

import numpy as np
import pytest
from openai.types.realtime import (
    ConversationItemAdded,
    ConversationItemDone,
    ConversationItemInputAudioTranscriptionCompletedEvent,
    ConversationItemInputAudioTranscriptionDeltaEvent,
    InputAudioBufferClearedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RealtimeErrorEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)
from openai.types.realtime.realtime_transcription_session_create_request import RealtimeTranscriptionSessionCreateRequest
from pydantic import BaseModel, ValidationError
from starlette.datastructures import QueryParams

from gateway.realtime.edge import Refused, Translated
from gateway.realtime.openai import ALAW, RATE, ULAW, InputAudio, OpenAIBetaEdge, OpenAIEdge
from shared.realtime import protocol as p
from shared.settings import Settings

SETTINGS = Settings(realtime_max_chunk_bytes=48_000)
SDK_EVENTS: dict[str, type[BaseModel]] = {
    "session.created": SessionCreatedEvent,
    "session.updated": SessionUpdatedEvent,
    "error": RealtimeErrorEvent,
    "input_audio_buffer.speech_started": InputAudioBufferSpeechStartedEvent,
    "input_audio_buffer.speech_stopped": InputAudioBufferSpeechStoppedEvent,
    "input_audio_buffer.committed": InputAudioBufferCommittedEvent,
    "input_audio_buffer.cleared": InputAudioBufferClearedEvent,
    "conversation.item.added": ConversationItemAdded,
    "conversation.item.done": ConversationItemDone,
    "conversation.item.input_audio_transcription.delta": ConversationItemInputAudioTranscriptionDeltaEvent,
    "conversation.item.input_audio_transcription.completed": ConversationItemInputAudioTranscriptionCompletedEvent,
}


def sdk_valid(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each GA event validates as the SDK's model of its type (required fields, types)."""
    for event in events:
        SDK_EVENTS[event["type"]].model_validate(event)
        assert event["event_id"].startswith("event_")
    return events


def edge(query: dict[str, str] | None = None, cls: type[OpenAIEdge] = OpenAIEdge) -> OpenAIEdge:
    e = cls(QueryParams({"intent": "transcription", **(query or {})}), SETTINGS)
    e.worker_message(p.SessionBegin(session_id="s-1", config=e.params))
    return e


def send(e: OpenAIEdge, event: dict[str, Any]) -> Translated:
    return e.client_text(json.dumps(event))


def configs(frames: list[str | bytes]) -> list[dict[str, Any]]:
    out = [json.loads(f) for f in frames if isinstance(f, str)]
    for c in out:
        if c["type"] == "config":
            p.ConfigUpdate.model_validate(c)  # the worker accepts it
    return out


def pcm(seconds: float) -> str:
    return base64.b64encode(b"\x01\x00" * int(RATE * seconds)).decode()


def final(text: str, utterance_id: int = 0, reason: p.FinalReason = "vad", words: list[p.StreamWord] | None = None):
    return p.TranscriptFinal(
        utterance_id=utterance_id, text=text, start=1.0, end=2.5, language="en", reason=reason, latency_ms=5, words=words
    )


def partial(text: str, utterance_id: int = 0) -> p.TranscriptPartial:
    return p.TranscriptPartial(utterance_id=utterance_id, text=text, start=1.0, end=2.0)


# -- connecting -----------------------------------------------------------------------


def test_connect_query_and_session_created() -> None:
    e = OpenAIEdge(QueryParams({"intent": "transcription"}), SETTINGS)
    assert (e.params.encoding, e.params.sample_rate, e.params.vad) == ("pcm_s16le", 24000, True)
    assert (e.params.endpoint_ms, e.params.vad_threshold, e.params.model) == (500, 0.5, None)
    (created,) = sdk_valid(e.worker_message(p.SessionBegin(session_id="s-1", config=e.params)))
    assert created["type"] == "session.created"
    session = SessionCreatedEvent.model_validate(created).session
    assert isinstance(session, RealtimeTranscriptionSessionCreateRequest)
    assert created["session"]["id"] == "s-1"
    assert created["session"]["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert created["session"]["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert created["session"]["audio"]["input"]["transcription"]["model"] == "tiny.en"

    # OpenAI's model names: transcription ones are registry aliases; realtime ones the default.
    assert OpenAIEdge(QueryParams({"model": "gpt-4o-transcribe"}), SETTINGS).session_model == "tiny.en"
    assert OpenAIEdge(QueryParams({"model": "gpt-realtime"}), SETTINGS).params.model is None
    assert OpenAIEdge(QueryParams({"model": "some-model"}), SETTINGS).params.model == "some-model"  # the proxy refuses it
    with pytest.raises(Refused) as refused:
        OpenAIEdge(QueryParams({"intent": "conversation"}), SETTINGS)
    assert refused.value.code == p.INVALID_REQUEST and "intent=transcription" in refused.value.message

    beta = OpenAIBetaEdge(QueryParams({"intent": "transcription"}), SETTINGS)
    (created,) = beta.worker_message(p.SessionBegin(session_id="s-2", config=beta.params))
    assert created["type"] == "transcription_session.created"
    assert created["session"]["input_audio_format"] == "pcm16" and created["session"]["id"] == "s-2"


def test_replies_before_session_created_wait_for_it() -> None:
    e = OpenAIEdge(QueryParams({}), SETTINGS)
    update = {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"turn_detection": None}}}}
    forward, replies = send(e, update)
    assert replies == [] and configs(forward) == [{"type": "config", "vad": False}]
    events = sdk_valid(e.worker_message(p.SessionBegin(session_id="s-1", config=e.params)))
    assert [ev["type"] for ev in events] == ["session.created", "session.updated"]
    assert events[0]["session"]["audio"]["input"]["turn_detection"] is not None  # the defaults
    assert events[1]["session"]["audio"]["input"]["turn_detection"] is None and events[1]["session"]["id"] == "s-1"


def test_refusals_before_the_session_are_openai_errors() -> None:
    (event,) = sdk_valid([OpenAIEdge.error(p.UNAUTHORIZED, "invalid API key")])
    assert event["error"] == {
        "type": "invalid_request_error",
        "code": "invalid_api_key",
        "message": "invalid API key",
        "param": None,
        "event_id": None,
    }
    assert OpenAIEdge.error(p.NO_CAPACITY, "full")["error"]["type"] == "server_error"
    assert OpenAIEdge.error(p.INVALID_REQUEST, "bad")["error"]["code"] == "invalid_request"


# -- session.update -------------------------------------------------------------------


def test_ga_session_update_maps_onto_native_config() -> None:
    e = edge()
    update = {
        "type": "session.update",
        "event_id": "evt_1",
        "session": {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {"model": "gpt-4o-transcribe", "language": "en", "prompt": "Dalston, Redis"},
                    "turn_detection": {
                        "type": "server_vad",
                        "threshold": 0.6,
                        "prefix_padding_ms": 100,
                        "silence_duration_ms": 800,
                    },
                    "noise_reduction": {"type": "near_field"},
                }
            },
            "include": ["item.input_audio_transcription.logprobs"],
        },
    }
    forward, replies = send(e, update)
    assert configs(forward) == [
        {
            "type": "config",
            "vad_threshold": 0.6,
            "min_silence_ms": 800,
            "endpoint_ms": 800,
            "language": "en",
            "prompt": "Dalston, Redis",
            "word_timestamps": True,
        }
    ]
    (updated,) = sdk_valid(replies)
    assert updated["type"] == "session.updated"
    audio_in = updated["session"]["audio"]["input"]
    assert audio_in["format"] == {"type": "audio/pcmu"}
    assert audio_in["transcription"] == {"model": "gpt-4o-transcribe", "language": "en", "prompt": "Dalston, Redis"}
    # The effective values: the worker's fixed pre-roll, no noise reduction.
    assert audio_in["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.6,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 800,
    }
    assert audio_in["noise_reduction"] is None
    assert updated["session"]["include"] == ["item.input_audio_transcription.logprobs"]
    assert e.audio.format == "g711_ulaw"

    # Only what changed is sent again; out-of-range values are clamped to the native range.
    td = {"type": "server_vad", "threshold": 0.99, "silence_duration_ms": 2500}
    forward, _ = send(
        e, {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"turn_detection": td}}}}
    )
    assert configs(forward) == [{"type": "config", "vad_threshold": 0.9, "min_silence_ms": 2000, "endpoint_ms": 2500}]
    forward, _ = send(
        e, {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"turn_detection": None}}}}
    )
    assert configs(forward) == [{"type": "config", "vad": False}]
    forward, _ = send(
        e, {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"turn_detection": td}}}}
    )
    assert configs(forward) == [{"type": "config", "vad": True}]  # the worker kept its VAD parameters


def test_beta_transcription_session_update() -> None:
    e = edge(cls=OpenAIBetaEdge)
    update = {
        "type": "transcription_session.update",
        "session": {
            "input_audio_format": "g711_alaw",
            "input_audio_transcription": {"model": "whisper-1", "language": "en"},
            "turn_detection": None,
            "input_audio_noise_reduction": None,
        },
    }
    forward, (updated,) = send(e, update)
    assert configs(forward) == [{"type": "config", "vad": False, "language": "en"}]
    assert updated["type"] == "transcription_session.updated"
    session = updated["session"]
    assert session["input_audio_format"] == "g711_alaw" and session["turn_detection"] is None
    assert session["input_audio_transcription"]["model"] == "whisper-1"
    assert e.audio.format == "g711_alaw"
    # The older realtime shape of session.update (flat fields) is read the same way.
    e2 = edge()
    _, (updated,) = send(e2, {"type": "session.update", "session": {"input_audio_format": "g711_ulaw"}})
    assert updated["type"] == "session.updated" and updated["session"]["input_audio_format"] == "g711_ulaw"


@pytest.mark.parametrize(
    ("session", "param", "needle"),
    [
        ({"type": "realtime"}, "session.type", "transcription"),
        ({"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}, "session.audio.input.format.rate", "24000"),
        ({"type": "transcription", "audio": {"input": {"format": {"type": "audio/opus"}}}}, "session.audio.input.format.type", "audio/pcm"),
        ({"type": "transcription", "audio": {"input": {"turn_detection": {"type": "semantic_vad"}}}}, "session.audio.input.turn_detection.type", "server_vad"),
        ({"type": "transcription", "audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 3}}}}, "session.audio.input.turn_detection.threshold", "1"),
        ({"type": "transcription", "audio": {"input": {"transcription": None}}}, "session.audio.input.transcription", "turned off"),
        ({"type": "transcription", "audio": {"input": {"transcription": {"model": "large-v3"}}}}, "session.audio.input.transcription.model", "?model=large-v3"),
        ({"type": "transcription", "audio": {"input": {"transcription": {"language": "xx"}}}}, "session.audio.input.transcription.language", "ISO-639-1"),
        ({"type": "transcription", "audio": {"input": {"transcription": {"language": "fr"}}}}, "session.audio.input.transcription.language", "English only"),
        ({"type": "transcription", "include": ["everything"]}, "session.include.0", "logprobs"),
    ],
)  # fmt: skip
def test_bad_session_updates_are_refused_whole(session: dict[str, Any], param: str, needle: str) -> None:
    e = edge()
    before = e.config
    # A good part next to the bad one is not applied either.
    session.setdefault("audio", {}).setdefault("input", {}).setdefault("format", {"type": "audio/pcma"})
    forward, (error,) = send(e, {"type": "session.update", "event_id": "evt_9", "session": session})
    assert forward == [] and e.config == before and e.audio.format == "pcm16"
    sdk_valid([error])
    assert error["error"]["type"] == "invalid_request_error" and error["error"]["event_id"] == "evt_9"
    assert error["error"]["param"] == param, error
    assert needle in error["error"]["message"], error


# -- client events --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code", "param"),
    [
        ("{not json", "invalid_json", None),
        ("[1, 2]", "invalid_json", None),
        (json.dumps({"event_id": "evt_3"}), "missing_required_parameter", "type"),
        (json.dumps({"type": "response.create", "event_id": "evt_3"}), "invalid_value", "type"),
        (json.dumps({"type": "input_audio_buffer.append", "event_id": "evt_3"}), "missing_required_parameter", "audio"),
        (json.dumps({"type": "input_audio_buffer.append", "event_id": "evt_3", "audio": 12}), "invalid_type", "audio"),
        (json.dumps({"type": "input_audio_buffer.append", "event_id": "evt_3", "audio": "%%%"}), "invalid_value", "audio"),
        (
            json.dumps({"type": "input_audio_buffer.append", "event_id": "evt_3", "audio": "A" * 70_000}),
            "chunk_too_large",
            "audio",
        ),
        (json.dumps({"type": "input_audio_buffer.commit", "event_id": "evt_3"}), "input_audio_buffer_commit_empty", None),
        (json.dumps({"type": "session.update", "event_id": "evt_3"}), "missing_required_parameter", "session"),
    ],
)
def test_bad_events_get_openai_errors_and_the_session_goes_on(frame: str, code: str, param: str | None) -> None:
    e = edge()
    forward, replies = e.client_text(frame)
    assert forward == []
    (error,) = sdk_valid(replies)
    assert (error["error"]["code"], error["error"]["param"]) == (code, param), error
    assert error["error"]["event_id"] == ("evt_3" if "evt_3" in frame else None)
    forward, replies = send(e, {"type": "input_audio_buffer.append", "audio": pcm(0.1)})
    assert replies == [] and len(forward) == 1


def test_binary_and_oversized_frames() -> None:
    e = edge()
    _, (error,) = e.client_bytes(b"\x00\x01")
    assert error["error"]["code"] == "invalid_value" and "base64" in error["error"]["message"]
    _, (error,) = e.client_text("x" * 200_000)
    assert error["error"]["code"] == "chunk_too_large"


def test_pcm16_passes_through_keeping_whole_samples() -> None:
    e = edge()
    forward, _ = send(e, {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x01\x02\x03").decode()})
    assert forward == [b"\x01\x02"]
    forward, _ = send(e, {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x04").decode()})
    assert forward == [b"\x03\x04"]


# -- G.711 ------------------------------------------------------------------------------


def test_g711_tables_match_the_standard() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop  # the stdlib's G.711 (removed in 3.13); a reference here only

    every_byte = bytes(range(256))
    assert ULAW.tolist() == list(np.frombuffer(audioop.ulaw2lin(every_byte, 2), dtype="<i2"))
    assert ALAW.tolist() == list(np.frombuffer(audioop.alaw2lin(every_byte, 2), dtype="<i2"))


def _ulaw_encode(x: np.ndarray) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import audioop

    return audioop.lin2ulaw((x * 32767).astype("<i2").tobytes(), 2)


def test_g711_is_converted_to_24k_pcm16() -> None:
    tone = 0.5 * np.sin(2 * math.pi * 440 * np.arange(8000) / 8000)  # 1 s at 8 kHz
    audio = InputAudio("g711_ulaw")
    data = _ulaw_encode(tone)
    out = b"".join(audio.convert(data[i : i + 800]) for i in range(0, len(data), 800)) + audio.drain()
    samples = np.frombuffer(out, dtype="<i2").astype(np.float64) / 32768
    assert abs(samples.size - 24_000) <= 2
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) * RATE / samples.size == pytest.approx(440, abs=2)
    assert np.sqrt(np.mean(samples[2000:-2000] ** 2)) == pytest.approx(0.5 / math.sqrt(2), rel=0.05)
    # After a drain (a commit) the stream goes on.
    assert len(audio.convert(data[:800])) > 0


def test_g711_appends_are_split_to_the_frame_limit() -> None:
    e = OpenAIEdge(QueryParams({}), Settings(realtime_max_chunk_bytes=4000))
    e.worker_message(p.SessionBegin(session_id="s", config=e.params))
    send(
        e,
        {"type": "session.update", "session": {"type": "transcription", "audio": {"input": {"format": {"type": "audio/pcma"}}}}},
    )
    forward, replies = send(e, {"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\xd5" * 2000).decode()})
    assert replies == [] and len(forward) >= 3 and all(isinstance(f, bytes) and len(f) <= 4000 for f in forward)


# -- a turn, worker -> client -----------------------------------------------------------


def test_server_vad_turn_event_sequence() -> None:
    e = edge()
    events = e.worker_message(p.SpeechStart(timestamp=1.0))
    for text in ("hello there", "hello there general", "hello there general kenobi"):
        events += e.worker_message(partial(text))
    events += e.worker_message(p.SpeechEnd(timestamp=2.3))
    events += e.worker_message(final("hello there general kenobi"))
    sdk_valid(events)
    assert [ev["type"] for ev in events] == [
        "input_audio_buffer.speech_started",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.delta",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.done",
    ]
    first = events[0]["item_id"]
    assert first.startswith("item_")
    assert all(first in (ev.get("item_id"), ev.get("item", {}).get("id")) for ev in events)
    assert events[0]["audio_start_ms"] == 700 and events[3]["audio_end_ms"] == 2300
    deltas = [ev["delta"] for ev in events if ev["type"].endswith(".delta")]
    assert deltas == ["hello there", " general", " kenobi"]
    completed = events[-2]
    assert completed["transcript"] == "".join(deltas) and completed["content_index"] == 0
    assert completed["usage"] == {"type": "duration", "seconds": 1.5}
    assert events[-1]["item"]["content"][0]["transcript"] == completed["transcript"]
    assert events[4]["previous_item_id"] is None

    # The next turn is a new item after the first; a stale partial of the first is dropped.
    assert e.worker_message(partial("hello there general kenobi again", utterance_id=0)) == []
    events = e.worker_message(p.SpeechStart(timestamp=3.0)) + e.worker_message(final("second", utterance_id=1))
    second = events[0]["item_id"]
    assert second != first
    committed = next(ev for ev in events if ev["type"] == "input_audio_buffer.committed")
    assert committed["previous_item_id"] == first and committed["item_id"] == second
    # A final that rewrote what was sent: no delta, the completed transcript is the truth.
    e.worker_message(partial("the cat sat", utterance_id=2))
    (delta,) = e.worker_message(partial("the cat sat on", utterance_id=2))
    assert delta["delta"] == "the cat sat"
    events = e.worker_message(final("The cat sat on the mat.", utterance_id=2))
    assert not [ev for ev in events if ev["type"].endswith(".delta")]
    assert next(ev for ev in events if ev["type"].endswith(".completed"))["transcript"] == "The cat sat on the mat."


def test_without_interim_deltas_the_final_is_the_only_delta() -> None:
    e = edge({"interim_deltas": "false"})
    assert e.worker_message(partial("the cat")) == [] and e.worker_message(partial("the cat sat")) == []
    deltas = [ev["delta"] for ev in e.worker_message(final("The cat sat.")) if ev["type"].endswith(".delta")]
    assert deltas == ["The cat sat."]
    with pytest.raises(Refused):
        OpenAIEdge(QueryParams({"interim_deltas": "maybe"}), SETTINGS)


def test_manual_commit_clear_and_beta_item_events() -> None:
    e = edge(cls=OpenAIBetaEdge)
    send(e, {"type": "transcription_session.update", "session": {"turn_detection": None}})
    assert e.worker_message(p.SpeechStart(timestamp=0.5)) == []  # no VAD events in manual mode
    forward, replies = send(e, {"type": "input_audio_buffer.append", "audio": pcm(0.5)})
    forward, replies = send(e, {"type": "input_audio_buffer.commit"})
    assert forward == ['{"type": "flush"}'] and replies == []
    # Cleared audio is committed at the worker (it cannot drop it) and its final dropped here.
    send(e, {"type": "input_audio_buffer.append", "audio": pcm(0.5)})
    forward, (cleared,) = send(e, {"type": "input_audio_buffer.clear"})
    assert forward == ['{"type": "flush"}'] and cleared["type"] == "input_audio_buffer.cleared"
    # An empty buffer after a clear cannot be committed.
    _, (error,) = send(e, {"type": "input_audio_buffer.commit"})
    assert error["error"]["code"] == "input_audio_buffer_commit_empty"

    events = e.worker_message(final("first turn", reason="commit"))
    assert [ev["type"] for ev in events] == [
        "input_audio_buffer.committed",
        "conversation.item.created",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    ]
    first = events[0]["item_id"]
    assert events[-1]["transcript"] == "first turn" and events[-1]["item_id"] == first
    assert e.worker_message(final("cleared words", utterance_id=1, reason="commit")) == []
    # The worker's own commit (max_utterance_s) is a turn like any other, after the first.
    events = e.worker_message(final("third", utterance_id=2, reason="max_length"))
    assert events[0]["type"] == "input_audio_buffer.committed" and events[0]["previous_item_id"] == first
    assert events[-1]["transcript"] == "third"


def test_logprobs_when_included() -> None:
    e = edge()
    send(
        e,
        {"type": "session.update", "session": {"type": "transcription", "include": ["item.input_audio_transcription.logprobs"]}},
    )
    words = [
        p.StreamWord(word="Hello", start=1.0, end=1.4, probability=0.9),
        p.StreamWord(word="world.", start=1.5, end=2.0, probability=0.5),
    ]
    events = sdk_valid(e.worker_message(final("Hello world.", words=words)))
    completed = next(ev for ev in events if ev["type"].endswith(".completed"))
    assert [lp["token"] for lp in completed["logprobs"]] == ["Hello", " world."]
    assert completed["logprobs"][1]["logprob"] == pytest.approx(math.log(0.5))
    assert completed["logprobs"][1]["bytes"] == list(b" world.")
    # Not asked: no logprobs.
    events = edge().worker_message(final("Hello world.", words=words))
    assert "logprobs" not in next(ev for ev in events if ev["type"].endswith(".completed"))


def test_worker_errors_in_openai_shape() -> None:
    e = edge()
    (event,) = sdk_valid(e.worker_message(p.error(p.WORKER_LOST, "the worker stopped", fatal=True)))
    assert event["error"]["type"] == "server_error" and event["error"]["code"] == "worker_lost"
    assert e.worker_message(p.WarningMessage(code="lag", message="behind")) == []


def test_native_config_accepts_the_new_fields() -> None:
    update = p.ConfigUpdate.model_validate(
        {"type": "config", "language": "en", "vad_threshold": 0.6, "min_silence_ms": 800, "endpoint_ms": 800}
    )
    assert (update.language, update.vad_threshold, update.endpoint_ms) == ("en", 0.6, 800)
    for bad in ({"vad_threshold": 0.95}, {"endpoint_ms": 100}, {"min_silence_ms": 2500}):
        with pytest.raises(ValidationError):
            p.ConfigUpdate.model_validate({"type": "config", **bad})
