"""Real-time factor of speaker detection vs transcription alone, on one two-voice file, in one run.

    .venv/bin/python bench/diarize_rtf.py               # 10 minutes (the committed two-voice
                                                        # conversation, repeated)
    .venv/bin/python bench/diarize_rtf.py --seconds 60  # a quick check

Prints the RTF (processing seconds / audio seconds) of: faster-whisper transcription
alone (the settings' model, compute type and beam), the default diarizer alone, and the
whole diarize pipeline (transcribe + diarize + merge's speaker assignment, run one after
the other in this process: the fleet runs the first two in parallel), and their ratios.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engines.diarize_default.engine import DefaultDiarizerEngine  # noqa: E402
from engines.merge.speakers import assign_speakers  # noqa: E402
from shared import model_registry  # noqa: E402
from shared.audio import TARGET_RATE, decode  # noqa: E402
from shared.contracts import SpeakerOptions  # noqa: E402
from shared.settings import get_settings  # noqa: E402
from shared.transcript import Segment, Word  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args()
    settings = get_settings()

    clip, _ = decode(ROOT / "tests/fixtures/conversation_en.wav")
    clip = clip[:, 0].astype(np.float32)
    audio = np.tile(clip, int(np.ceil(args.seconds * TARGET_RATE / len(clip))))[: int(args.seconds * TARGET_RATE)]
    duration = len(audio) / TARGET_RATE

    from faster_whisper import WhisperModel

    entry = model_registry.resolve(None, settings)
    model = WhisperModel(
        model_registry.materialize(entry),
        device=settings.whisper_device,
        compute_type=settings.whisper_compute_type,
        cpu_threads=settings.whisper_cpu_threads,
    )
    diarizer = DefaultDiarizerEngine(settings)
    diarizer.load()

    began = time.perf_counter()
    segments, _ = model.transcribe(
        audio, language="en", beam_size=settings.whisper_beam_size, word_timestamps=True, condition_on_previous_text=False
    )
    segments = [
        Segment(
            id=s.id, start=s.start, end=s.end, text=s.text, words=[Word(text=w.word, start=w.start, end=w.end) for w in s.words]
        )
        for s in segments
    ]
    transcribe_s = time.perf_counter() - began

    began = time.perf_counter()
    turns, details = diarizer.diarize(audio, SpeakerOptions())
    diarize_s = time.perf_counter() - began

    began = time.perf_counter()
    assign_speakers(segments, turns)
    assign_s = time.perf_counter() - began
    pipeline_s = transcribe_s + diarize_s + assign_s

    print(f"audio {duration:.0f} s, model {entry.name} ({settings.whisper_compute_type}, beam {settings.whisper_beam_size})")
    print(f"transcribe alone    {transcribe_s:7.2f} s  RTF {transcribe_s / duration:.4f}")
    print(
        f"default diarizer    {diarize_s:7.2f} s  RTF {diarize_s / duration:.4f}  speakers {len({t.speaker for t in turns})}, {details}"
    )
    print(f"diarize pipeline    {pipeline_s:7.2f} s  RTF {pipeline_s / duration:.4f}  (sequential; assignment {assign_s:.3f} s)")
    print(f"ratio diarizer / transcription          {diarize_s / transcribe_s:.3f}")
    print(f"ratio diarize pipeline / transcription  {pipeline_s / transcribe_s:.3f}")


if __name__ == "__main__":
    main()
