"""Every field the installed ElevenLabs SDK sends on the realtime socket, through the edge:
the query it builds (`ScribeRealtime._build_websocket_url`) and the chunks it sends
(`RealtimeConnection.send`), and what each becomes on the native side."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from elevenlabs.realtime import AudioFormat, CommitStrategy
from elevenlabs.realtime.connection import RealtimeConnection
from elevenlabs.realtime.scribe import ScribeRealtime
from starlette.datastructures import QueryParams

from gateway import hybrid
from gateway.auth import Principal
from gateway.elevenlabs.realtime import ElevenLabsEdge, without_fillers
from gateway.realtime.edge import Refused
from shared.realtime import protocol as p
from shared.settings import Settings

SETTINGS = Settings(realtime_max_chunk_bytes=4000)


def sdk_query(**options: Any) -> QueryParams:
    """The query string the SDK's `connect(options)` opens the socket with."""
    scribe = ScribeRealtime(api_key="k", base_url="http://127.0.0.1:8000")
    url = scribe._build_websocket_url(
        model_id=options.pop("model_id", "scribe_v2_realtime"),
        audio_format=options.pop("audio_format", AudioFormat.PCM_16000).value,
        commit_strategy=options.pop("commit_strategy", CommitStrategy.MANUAL).value,
        **scribe._shared_url_kwargs(options),  # type: ignore[arg-type]
    )
    return QueryParams(urlsplit(url).query)


def edge(query: QueryParams | dict[str, str]) -> ElevenLabsEdge:
    return ElevenLabsEdge(query, SETTINGS)


class Recorder:
    """Stands in for the SDK's socket: keeps what `RealtimeConnection` sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, data: str) -> None:
        self.sent.append(data)


async def sdk_chunks(rate: int, *sends: dict[str, Any], commit: bool = False) -> list[str]:
    socket = Recorder()
    connection = RealtimeConnection(socket, current_sample_rate=rate)  # type: ignore[arg-type]
    for data in sends:
        await connection.send(data)
    if commit:
        await connection.commit()
    return socket.sent


def final(text: str, words: list[str] | None = None, language: str | None = "en") -> p.TranscriptFinal:
    stream = [p.StreamWord(word=w, start=i * 0.5, end=i * 0.5 + 0.4, probability=0.9) for i, w in enumerate(words or [])]
    return p.TranscriptFinal(
        utterance_id=0, text=text, start=0.0, end=2.0, language=language, reason="commit", latency_ms=1.0, words=stream or None
    )


def test_every_sdk_field_maps_to_the_native_session() -> None:
    query = sdk_query(
        audio_format=AudioFormat.ULAW_8000,
        commit_strategy=CommitStrategy.VAD,
        vad_silence_threshold_secs=0.8,
        vad_threshold=0.3,
        min_speech_duration_ms=250,
        min_silence_duration_ms=300,
        language_code="en",
        secondary_languages=["fr", "de"],
        include_timestamps=True,
        include_language_detection=True,
        keyterms=["Dalston", "Hackney Wick"],
        no_verbatim=True,
        filter_background_audio=True,
        enable_logging=False,
        token="single-use",
    )
    assert query.getlist("keyterms") == ["Dalston", "Hackney Wick"]  # repeated, as the SDK sends them
    el = edge(query)
    params = el.params
    assert (params.encoding, params.sample_rate, params.vad) == ("mulaw", 8000, True)
    assert (params.endpoint_ms, params.vad_threshold, params.min_speech_ms, params.min_silence_ms) == (800, 0.3, 250, 300)
    assert (params.language, params.word_timestamps, params.max_utterance_s) == ("en", True, 90.0)
    assert params.prompt == "Dalston, Hackney Wick"  # the keyterms, as batch joins them for hotwords
    assert (el.include_language_detection, el.no_verbatim, el.enable_logging) == (True, True, False)
    # The worker gets the same parameters through its query string.
    assert p.SessionParams.model_validate(params.query()) == params
    config = el.worker_message(p.SessionBegin(session_id="s", config=params))[0]["config"]
    assert config["keyterms"] == ["Dalston", "Hackney Wick"]
    assert (config["include_language_detection"], config["no_verbatim"], config["enable_logging"]) == (True, True, False)
    assert (config["audio_format"], config["sample_rate"], config["vad_silence_threshold_secs"]) == ("ulaw_8000", 8000, 0.8)


def test_sdk_defaults() -> None:
    el = edge(sdk_query(audio_format=AudioFormat.PCM_16000))
    params = el.params
    assert (params.encoding, params.sample_rate, params.vad, params.prompt) == ("pcm_s16le", 16000, False, None)
    assert (params.endpoint_ms, params.vad_threshold, params.min_speech_ms, params.min_silence_ms) == (1500, 0.4, 100, 100)
    assert (el.keyterms, el.include_language_detection, el.no_verbatim, el.enable_logging) == ([], False, False, True)
    config = el.worker_message(p.SessionBegin(session_id="s", config=params))[0]["config"]
    assert (config["keyterms"], config["include_language_detection"], config["no_verbatim"]) == (None, False, False)


@pytest.mark.parametrize(
    "name, low, high, bad",
    [
        ("vad_silence_threshold_secs", "0.3", "3.0", ["0.29", "3.01", "1500", "nan", "soon"]),
        ("vad_threshold", "0.1", "0.9", ["0.05", "0.95", "1"]),
        ("min_speech_duration_ms", "50", "2000", ["49", "2001", "0.1"]),
        ("min_silence_duration_ms", "50", "2000", ["49", "2001"]),
    ],
)
def test_vad_fields_use_elevenlabs_units_and_ranges(name: str, low: str, high: str, bad: list[str]) -> None:
    for value in (low, high):
        edge({"model_id": "scribe_v2_realtime", "commit_strategy": "vad", name: value})
    for value in bad:
        with pytest.raises(Refused, match=name) as info:
            edge({"model_id": "scribe_v2_realtime", name: value})
        assert info.value.code == p.INVALID_REQUEST and info.value.close_code == p.CLOSE_POLICY
        assert ElevenLabsEdge.error(info.value.code, info.value.message)["message_type"] == "invalid_request"
    # Seconds on the ElevenLabs side, milliseconds on the native one.
    assert edge({"model_id": "scribe_v2_realtime", "vad_silence_threshold_secs": "0.3"}).params.endpoint_ms == 300
    assert edge({"model_id": "scribe_v2_realtime", "vad_silence_threshold_secs": "3"}).params.endpoint_ms == 3000


@pytest.mark.parametrize(
    "query, expected",
    [
        ("keyterms=Dalston&keyterms=Hackney%20Wick", ["Dalston", "Hackney Wick"]),
        ("keyterms=%5B%22Dalston%22%2C%22Hackney%20Wick%22%5D", ["Dalston", "Hackney Wick"]),  # a JSON list
        ("keyterms=null", []),
        ("keyterms=%20&keyterms=Dalston", ["Dalston"]),
    ],
)
def test_keyterms_encodings(query: str, expected: list[str]) -> None:
    el = edge(QueryParams(f"model_id=scribe_v2_realtime&{query}"))
    assert el.keyterms == expected
    assert el.params.prompt == (", ".join(expected) or None)


@pytest.mark.parametrize(
    "terms, fragment",
    [
        ([f"term{i}" for i in range(51)], "at most 50 terms"),
        (["a" * 21], "at most 20 characters"),
    ],
)
def test_keyterms_beyond_elevenlabs_limits_are_refused(terms: list[str], fragment: str) -> None:
    with pytest.raises(Refused, match=f"keyterms: .*{fragment}") as info:
        edge(sdk_query(keyterms=terms))
    assert info.value.code == p.INVALID_REQUEST
    assert len(edge(sdk_query(keyterms=[f"t{i}" for i in range(50)])).keyterms) == 50
    assert edge(sdk_query(keyterms=["a" * 20])).keyterms == ["a" * 20]


async def test_previous_text_on_the_first_chunk_joins_the_keyterms_in_the_prompt() -> None:
    el = edge(sdk_query(keyterms=["Dalston"]))
    audio = b"\x01\x00" * 50
    b64 = base64.b64encode(audio).decode()
    first, second, commit = await sdk_chunks(
        16000, {"audio_base_64": b64, "previous_text": "we met in Hackney"}, {"audio_base_64": b64}, commit=True
    )
    assert json.loads(second)["previous_text"] is None  # the SDK sends null on every later chunk
    assert el.client_text(first) == ([json.dumps({"type": "config", "prompt": "Dalston we met in Hackney"}), audio], [])
    assert el.client_text(second) == ([audio], [])
    assert el.client_text(commit) == ([json.dumps({"type": "flush"})], [])
    _, errors = el.client_text(json.dumps({**json.loads(second), "previous_text": "too late"}))
    assert errors[0]["message_type"] == "input_error" and "first audio chunk" in errors[0]["error"]


def test_previous_text_edge_cases() -> None:
    chunk = {"message_type": "input_audio_chunk", "audio_base_64": base64.b64encode(b"\0\0").decode(), "commit": False}
    # Blank context is no context; without keyterms nothing is configured.
    assert edge({"model_id": "scribe_v2_realtime"}).client_text(json.dumps({**chunk, "previous_text": "  "})) == ([b"\0\0"], [])
    # Sent with an empty chunk first, the context still counts as the first chunk's.
    el = edge({"model_id": "scribe_v2_realtime"})
    forward, _ = el.client_text(json.dumps({**chunk, "audio_base_64": "", "previous_text": "hello"}))
    assert forward == [json.dumps({"type": "config", "prompt": "hello"})]
    # Long context keeps its end (the words right before the audio), within the native limit.
    el = edge(sdk_query(keyterms=["Dalston"]))
    forward, _ = el.client_text(json.dumps({**chunk, "previous_text": "x" * 990 + " the end"}))
    prompt = json.loads(forward[0])["prompt"]
    assert len(prompt) == 1000 and prompt.endswith("x the end")
    p.ConfigUpdate.model_validate_json(forward[0])
    _, errors = edge({"model_id": "scribe_v2_realtime"}).client_text(json.dumps({**chunk, "previous_text": 42}))
    assert errors[0]["message_type"] == "input_error"


def test_include_language_detection_puts_language_code_on_committed_transcripts() -> None:
    el = edge(sdk_query(include_language_detection=True, include_timestamps=True))
    committed, stamped = el.worker_message(final("hello world", ["hello", "world"]))
    assert committed == {"message_type": "committed_transcript", "text": "hello world", "language_code": "eng"}
    assert stamped["language_code"] == "eng"
    # The client's language when the model reports none (Parakeet).
    el = edge(sdk_query(include_language_detection=True, language_code="de"))
    assert el.worker_message(final("hallo", language=None))[0]["language_code"] == "deu"
    assert "language_code" not in edge(sdk_query()).worker_message(final("hello"))[0]


def test_no_verbatim_drops_fillers_from_partials_commits_and_words() -> None:
    el = edge(sdk_query(no_verbatim=True, include_timestamps=True))
    partial = el.worker_message(p.TranscriptPartial(utterance_id=0, text="Um, so I", start=0.0, end=1.0))[0]
    assert partial["text"] == "So I"
    words = ["Um,", "so", "I", "was,", "uh,", "there", "uh."]
    committed, stamped = el.worker_message(final(" ".join(words), words))
    assert committed["text"] == stamped["text"] == "So I was there."
    timed = [w for w in stamped["words"] if w["type"] == "word"]
    assert [w["text"] for w in timed] == ["So", "I", "was", "there."]
    assert timed[0]["start"] == 0.5 and timed[-1]["start"] == 2.5  # the kept words keep their own times
    # Off: the words as the model wrote them.
    assert edge(sdk_query()).worker_message(final("Um, so I"))[0]["text"] == "Um, so I"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Um, so I was, uh, there uh.", "So I was there."),
        ("I think, um, yes", "I think yes"),
        ("Hmm. Okay then.", "Okay then."),
        ("We went there, uh.", "We went there."),
        ("Er, erm, right?", "Right?"),
        ("uh hello", "hello"),
        ("um", ""),
        # Words that merely contain a filler stay.
        ("Erm, the umbrella was, er, here.", "The umbrella was here."),
        ("Ahmed said hmmm", "Ahmed said hmmm"),
    ],
)
def test_without_fillers(text: str, expected: str) -> None:
    assert " ".join(t for _, t in without_fillers(text.split())) == expected


async def test_ulaw_8000_audio_goes_through_as_mulaw() -> None:
    el = edge(sdk_query(audio_format=AudioFormat.ULAW_8000))
    assert (el.params.encoding, el.params.sample_rate, el.params.bytes_per_sample) == ("mulaw", 8000, 1)
    audio = bytes(range(256))  # one byte a sample: any length is whole samples
    (chunk,) = await sdk_chunks(8000, {"audio_base_64": base64.b64encode(audio).decode()})
    assert el.client_text(chunk) == ([audio], [])
    _, errors = el.client_text(json.dumps({**json.loads(chunk), "sample_rate": 16000}))
    assert errors[0]["message_type"] == "input_error" and "ulaw_8000" in errors[0]["error"]


def test_enable_logging_false_means_no_retention() -> None:
    principal = Principal(key_id=uuid.uuid4(), tenant_id=uuid.uuid4(), scopes=frozenset({"realtime"}))
    settings = Settings(realtime_retain_audio=True)

    def retained(query: QueryParams) -> bool:
        el = edge(query)
        options = hybrid.parse(
            query, settings=settings, principal=principal, model="tiny.en", language=None, logging_enabled=el.enable_logging
        )
        return options.retain_audio

    assert retained(sdk_query()) is True
    assert retained(sdk_query(enable_logging=False)) is False
    # enable_logging=false wins over an explicit retain_audio=true.
    assert retained(QueryParams(f"{sdk_query(enable_logging=False)}&retain_audio=true")) is False


def test_unknown_query_parameters_and_message_fields_are_ignored() -> None:
    el = edge(
        QueryParams(
            "model_id=scribe_v2_realtime&audio_format=pcm_16000&secondary_languages=fr&filter_background_audio=true"
            "&entity_redaction_mode=redacted&timestamps_granularity=character&max_tokens_to_recompute=5"
            "&some_future_option=1&another_one=%7B%22a%22%3A1%7D"
        )
    )
    assert el.params.sample_rate == 16000
    audio = b"\x02\x00" * 10
    chunk = {
        "message_type": "input_audio_chunk",
        "audio_base_64": base64.b64encode(audio).decode(),
        "commit": True,
        "sample_rate": 16000,
        "future_field": {"nested": [1, 2]},
        "speaker_hint": "agent",
    }
    assert el.client_text(json.dumps(chunk)) == ([audio, json.dumps({"type": "flush"})], [])
    assert el.client_text(json.dumps({"message_type": "commit", "future_field": 1})) == ([json.dumps({"type": "flush"})], [])


@pytest.mark.parametrize(
    "options, name",
    [({"entity_redaction": "all"}, "entity_redaction"), ({"transcript_edit": "Fix the grammar."}, "transcript_edit")],
)
def test_fields_asking_for_messages_dalston_does_not_send_are_refused(options: dict[str, Any], name: str) -> None:
    with pytest.raises(Refused, match=f"{name}: .* not available on this server") as info:
        edge(sdk_query(**options))
    assert info.value.code == p.INVALID_REQUEST
    edge(QueryParams(f"model_id=scribe_v2_realtime&{name}=null"))  # absent in the SDKs' own spelling
