"""OpenAI response bodies from the canonical transcript."""

from __future__ import annotations

import pytest

from shared.formats import openai
from shared.transcript import Segment, Transcript, Word


def transcript(**update) -> Transcript:
    words = [Word(text="Hello", start=0.0, end=0.4, probability=0.9), Word(text="there.", start=0.5, end=0.9, probability=0.8)]
    t = Transcript(
        text="Hello there.", language="de", language_probability=0.7, duration=1.25, model="base", words=words,
        segments=[Segment(id=0, seek=0, start=0.0, end=0.9, text="Hello there.", words=words, avg_logprob=-0.3,
                          no_speech_prob=0.05, compression_ratio=0.8, temperature=0.0, tokens=[1, 2, 3])],
    )  # fmt: skip
    return t.model_copy(update=update)


def test_json_and_text() -> None:
    assert openai.to_json(transcript()) == {"text": "Hello there.", "usage": {"type": "duration", "seconds": 1.25}}
    assert openai.render(transcript(), "text") == "Hello there.\n"


def test_verbose_json_carries_the_decoder_values_and_language_name() -> None:
    body = openai.to_verbose_json(transcript(), granularities=("word", "segment"))
    assert body["task"] == "transcribe" and body["language"] == "german" and body["duration"] == 1.25
    assert body["segments"] == [
        {"id": 0, "seek": 0, "start": 0.0, "end": 0.9, "text": " Hello there.", "tokens": [1, 2, 3], "temperature": 0.0,
         "avg_logprob": -0.3, "compression_ratio": 0.8, "no_speech_prob": 0.05}
    ]  # fmt: skip
    assert body["words"] == [{"word": "Hello", "start": 0.0, "end": 0.4}, {"word": "there.", "start": 0.5, "end": 0.9}]
    assert openai.to_verbose_json(transcript(), task="translate")["task"] == "translate"


def test_values_an_engine_did_not_produce_stay_null() -> None:
    t = transcript()
    t.segments[0] = Segment(id=0, start=0.0, end=0.9, text="Hello there.")
    segment = openai.to_verbose_json(t)["segments"][0]
    assert segment["avg_logprob"] is None and segment["no_speech_prob"] is None and segment["tokens"] == []


@pytest.mark.parametrize(
    ("granularities", "keys"),
    [(("segment",), {"segments"}), (("word",), {"words"}), (("word", "segment"), {"segments", "words"})],
)
def test_granularities_choose_the_lists(granularities, keys) -> None:
    body = openai.to_verbose_json(transcript(), granularities=granularities)
    assert {"segments", "words"} & set(body) == keys


def test_language_names() -> None:
    assert openai.language_name("en") == "english" and openai.language_name("yue") == "cantonese"
    assert openai.language_name("xx") == "xx"  # unknown codes pass through unchanged
    assert len(openai.LANGUAGE_NAMES) == 100


def test_srt_vtt_and_unknown_format() -> None:
    assert openai.render(transcript(), "srt") == "1\n00:00:00,000 --> 00:00:00,900\nHello there.\n"
    assert openai.render(transcript(), "vtt") == "WEBVTT\n\n00:00:00.000 --> 00:00:00.900\nHello there.\n"
    with pytest.raises(ValueError):
        openai.render(transcript(), "yaml")


def test_diarized_json_splits_segments_at_speaker_changes() -> None:
    t = transcript()
    t.words[0].speaker, t.words[1].speaker = "speaker_0", "speaker_1"
    body = openai.to_diarized_json(t)
    assert [(s["speaker"], s["text"], s["start"], s["end"]) for s in body["segments"]] == [
        ("speaker_0", "Hello", 0.0, 0.4),
        ("speaker_1", "there.", 0.5, 0.9),
    ]
