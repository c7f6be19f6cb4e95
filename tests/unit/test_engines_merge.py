"""Transcript assembly is a pure function of the stage outputs."""

from __future__ import annotations

import pytest

from engines.assembly import assemble
from shared.contracts import PrepareOutput, TranscribeOutput
from shared.transcript import Segment, Word


def prepare(channels: int = 1) -> PrepareOutput:
    keys = ["p/audio.wav"] if channels == 1 else [f"p/channel_{i}.wav" for i in range(channels)]
    return PrepareOutput(audio_key="p/audio.wav", channel_keys=keys, duration=10.0, channels=channels, original_sample_rate=44100)


def seg(id: int, start: float, end: float, *words: tuple[str, float, float]) -> Segment:
    return Segment(
        id=id,
        start=start,
        end=end,
        text=" ".join(w[0] for w in words),
        words=[Word(text=t, start=s, end=e, probability=0.9) for t, s, e in words],
        avg_logprob=-0.2,
        no_speech_prob=0.01,
    )


def transcribed(
    segments: list[Segment], *, channel: int | None = None, language: str = "en", prob: float | None = 0.97
) -> TranscribeOutput:
    return TranscribeOutput(
        language=language,
        language_probability=prob,
        duration=10.0,
        segments=segments,
        model="tiny.en",
        channel=channel,
        details={"engine_id": "faster-whisper", "beam_size": 1},
    )


def test_single_channel() -> None:
    out = transcribed([seg(1, 0.0, 2.0, ("Hello", 0.0, 0.5), ("world.", 0.6, 1.0)), seg(2, 2.5, 4.0, ("Bye.", 2.5, 3.0))])
    t = assemble(prepare(), [out])

    assert t.text == "Hello world. Bye."
    assert [s.id for s in t.segments] == [0, 1]
    assert [w.text for w in t.words] == ["Hello", "world.", "Bye."]
    assert (t.language, t.language_probability, t.duration, t.channels, t.model) == ("en", 0.97, 10.0, 1, "tiny.en")
    assert t.speakers == [] and all(w.speaker is None and w.channel is None for w in t.words)
    assert t.segments[0].avg_logprob == -0.2  # decoder values pass through
    assert [(s.stage, s.engine_id) for s in t.stages] == [("prepare", "prepare"), ("transcribe", "faster-whisper")]
    assert t.stages[1].details["beam_size"] == 1


def test_per_channel_interleaves_in_time_order() -> None:
    left = transcribed([seg(1, 0.0, 1.0, ("a", 0.0, 0.4)), seg(2, 3.0, 4.0, ("c", 3.0, 3.5))], channel=0)
    right = transcribed([seg(1, 1.5, 2.5, ("b", 1.5, 2.0))], channel=1)
    t = assemble(prepare(2), [right, left])

    assert t.text == "a b c"
    assert [(s.id, s.channel, s.speaker) for s in t.segments] == [(0, 0, "channel_0"), (1, 1, "channel_1"), (2, 0, "channel_0")]
    assert [(w.text, w.channel, w.speaker) for w in t.words] == [
        ("a", 0, "channel_0"),
        ("b", 1, "channel_1"),
        ("c", 0, "channel_0"),
    ]
    assert t.speakers == ["channel_0", "channel_1"]
    assert t.channels == 2
    assert [s.details["channel"] for s in t.stages[1:]] == [0, 1]


def test_per_channel_language_from_first_channel_with_speech() -> None:
    silent = transcribed([], channel=0, language="en", prob=0.3)
    speaking = transcribed([seg(1, 0.0, 1.0, ("hola", 0.0, 0.5))], channel=1, language="es", prob=0.9)
    t = assemble(prepare(2), [silent, speaking])
    assert (t.language, t.language_probability) == ("es", 0.9)


def test_no_speech_gives_empty_text() -> None:
    t = assemble(prepare(), [transcribed([])])
    assert (t.text, t.segments, t.words) == ("", [], [])


def test_needs_a_transcription() -> None:
    with pytest.raises(ValueError):
        assemble(prepare(), [])
