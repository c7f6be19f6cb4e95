"""The realtime worker's decodes against the previous ones: quality and cost, same utterances.

    .venv/bin/python -m bench.realtime_decode [--pads 2,4,8] [--model tiny.en]

Each fixture streams through a real realtime session (VAD segmentation, endpoint 500 ms), and
every utterance it finalises is decoded again by each variant:
  partial, whole 30 s   greedy, no timestamps, on Whisper's whole window (the previous partial)
  partial, audio+P s    the same on a window of the utterance plus P s (this worker: P = 8)
  final, fallback       beam 5 + word timestamps with faster-whisper's temperature fallback
                        (the previous final)
  final, temp 0         the same at temperature 0 with a token budget (this worker's final)
Reported per split: WER of the decodes against the fixture's text, and the CPU time per decode
(median, p95, max; CPU time, so other load on the machine does not blur it), with the ratio of
the total to the previous variant. The tune split chose the pad and the final's options; the
held-out split was not looked at for that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import jiwer
import numpy as np
import soxr

from realtime_worker.asr import SAMPLE_RATE, Decoded, FasterWhisperBackend
from realtime_worker.scheduler import DecodeScheduler
from realtime_worker.session import Session
from shared.audio import read_wav
from shared.realtime import protocol as p
from shared.settings import Settings

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SPLITS = {
    "tune": ["speech_en", "long_en", "short_en", "conversation_en"],
    "heldout": ["meeting_en", "duo_en", "pii_call_en", "pii_call2_en"],
}


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


class Recording:
    """The worker's backend, keeping the audio of every final it decodes."""

    def __init__(self, backend: FasterWhisperBackend) -> None:
        self.backend = backend
        self.name = backend.name
        self.finals: list[np.ndarray] = []

    def decode(self, audio: np.ndarray, *, final: bool, **options: object) -> Decoded:
        if final:
            self.finals.append(audio)
        return self.backend.decode(audio, final=final, **options)  # type: ignore[arg-type]


async def utterances(backend: FasterWhisperBackend, name: str) -> list[np.ndarray]:
    audio, rate = read_wav(FIXTURES / f"{name}.wav")
    audio = soxr.resample(audio if audio.ndim == 1 else audio.mean(axis=1), rate, 16000)
    pcm = (np.clip(np.concatenate([audio, np.zeros(16000)]), -1, 1) * 32767).astype("<i2").tobytes()
    recording = Recording(backend)
    scheduler = DecodeScheduler(recording)  # type: ignore[arg-type]
    scheduler.start()

    async def send(_msg: p.ServerMessage) -> None:
        return None

    params = p.SessionParams(word_timestamps=False, language="en", endpoint_ms=500, interim_results=False)
    session = Session(name, params, scheduler, Settings(realtime_lag_hold_s=1e4, realtime_lag_max_s=1e4), send)
    for i in range(0, len(pcm), 3200):
        await session._on_audio(pcm[i : i + 3200], 0.0)
    await session._on_text(json.dumps({"type": "end"}), 0.0)
    await session.process()
    await scheduler.close()
    return recording.finals


def previous_final(backend: FasterWhisperBackend, audio: np.ndarray) -> str:
    """The final as the worker decoded it before: faster-whisper's temperature fallback, no budget."""
    segments, _ = backend.model.transcribe(
        audio, language="en", vad_filter=False, condition_on_previous_text=False, beam_size=5, word_timestamps=True
    )
    return " ".join(segment.text.strip() for segment in segments)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--pads", default="2,4,8")
    args = parser.parse_args()
    backend = FasterWhisperBackend(args.model, Settings(whisper_cpu_threads=2))

    def partial(pad: float | None) -> Callable[[np.ndarray], str]:
        def decode(audio: np.ndarray) -> str:
            backend.partial_pad_s = pad
            return backend.decode(audio, final=False, words=False, language="en", prompt=None).text

        return decode

    def final(audio: np.ndarray) -> str:
        return backend.decode(audio, final=True, words=True, language="en", prompt=None).text

    variants: list[tuple[str, Callable[[np.ndarray], str], bool]] = [  # (name, decode, is the previous one)
        ("partial, whole 30 s", partial(None), True),
        *((f"partial, audio+{pad:g} s", partial(pad), False) for pad in map(float, args.pads.split(","))),
        ("final, fallback", lambda audio: previous_final(backend, audio), True),
        ("final, temp 0", final, False),
    ]
    print(f"model {args.model}, 2 threads; each finalised utterance decoded by each variant; CPU ms per decode")
    print(
        f"{'split':<8} {'variant':<22} {'utt':>4} {'audio s':>7} {'WER':>6} {'median':>7} {'p95':>6} {'max':>6} {'CPU ratio':>9}"
    )
    for split, names in SPLITS.items():
        pieces = {name: asyncio.run(utterances(backend, name)) for name in names}
        baseline = 0.0
        for label, decode, previous in variants:
            times: list[float] = []
            errors = total = 0
            for name, audios in pieces.items():
                texts = []
                for audio in audios:
                    began = time.process_time()
                    texts.append(decode(audio))
                    times.append(time.process_time() - began)
                reference, hypothesis = words((FIXTURES / f"{name}.txt").read_text()), words(" ".join(texts))
                out = jiwer.process_words(reference, hypothesis)
                errors += out.substitutions + out.deletions + out.insertions
                total += len(reference.split())
            baseline = sum(times) if previous else baseline
            seconds = sum(audio.size for audios in pieces.values() for audio in audios) / SAMPLE_RATE
            ms = np.array(times) * 1000
            print(
                f"{split:<8} {label:<22} {len(times):>4} {seconds:>7.1f} {errors / total:>6.3f} {np.median(ms):>7.0f}"
                f" {np.percentile(ms, 95):>6.0f} {ms.max():>6.0f} {sum(times) / baseline:>9.2f}"
            )


if __name__ == "__main__":
    main()
