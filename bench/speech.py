"""Long speech inputs for benchmarks, built from the committed espeak-ng fixtures."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np

from shared.transcript import Segment, Transcript, Word

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"


def long_speech_wav(path: Path, seconds: float) -> Path:
    """Rotate the fixture recordings with short pauses until `seconds` of audio.

    Varied content matters: Whisper skips whole windows of audio that repeat verbatim."""
    clips = []
    rate = None
    for name in ("long_en.wav", "speech_en.wav", "short_en.wav"):
        with wave.open(str(FIXTURES / name), "rb") as src:
            rate = rate or src.getframerate()
            assert src.getframerate() == rate and src.getnchannels() == 1
            clips.append(np.frombuffer(src.readframes(src.getnframes()), dtype="<i2"))
    pause = np.zeros(int(0.6 * rate), dtype="<i2")
    out, total, i = [], 0, 0
    while total < seconds * rate:
        piece = np.concatenate([clips[i % len(clips)], pause])
        out.append(piece)
        total += len(piece)
        i += 1
    audio = np.concatenate(out)[: int(seconds * rate)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as dst:
        dst.setnchannels(1)
        dst.setsampwidth(2)
        dst.setframerate(rate)
        dst.writeframes(audio.tobytes())
    return path


def big_wav(path: Path, size_bytes: int, rate: int = 48_000, channels: int = 2) -> Path:
    """A WAV of about `size_bytes` of quiet noise, written in chunks (never whole in memory)."""
    rng = np.random.default_rng(0)
    frame_bytes = 2 * channels
    frames = size_bytes // frame_bytes
    chunk = rate * 10
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as dst:
        dst.setnchannels(channels)
        dst.setsampwidth(2)
        dst.setframerate(rate)
        written = 0
        while written < frames:
            n = min(chunk, frames - written)
            dst.writeframes(rng.integers(-300, 300, size=n * channels, dtype="<i2").tobytes())
            written += n
    return path


def transcribe(model: Any, audio: np.ndarray, beam_size: int) -> Transcript:
    """16 kHz mono `audio` through a faster-whisper model as the transcribe engine runs it
    (English, word timestamps, no VAD, no conditioning on previous text)."""
    raw, _info = model.transcribe(
        audio, language="en", beam_size=beam_size, word_timestamps=True, vad_filter=False, condition_on_previous_text=False
    )
    segments = [
        Segment(
            id=s.id,
            start=s.start,
            end=s.end,
            text=s.text.strip(),
            words=[Word(text=w.word.strip(), start=w.start, end=w.end, probability=w.probability) for w in s.words or []],
        )
        for s in raw
    ]
    return Transcript(
        text=" ".join(s.text for s in segments if s.text),
        language="en",
        language_probability=None,
        duration=len(audio) / 16000,
        segments=segments,
        words=[w for s in segments for w in s.words],
        model="tiny.en",
    )
