"""The realtime worker's decodes against the previous ones: quality and cost, same utterances.

    .venv/bin/python -m bench.realtime_decode [--pads 2,4,8] [--model tiny.en]
    .venv/bin/python -m bench.realtime_decode --finals-only --final-beams 5,2,1 --final-mins 15,20,25 --g711
    .venv/bin/python -m bench.realtime_decode --finals-only --moonshine   # pip install moonshine_cpp==0.1.4

Each recording streams through a real realtime session (VAD segmentation, endpoint 500 ms; with
--g711 also as G.711 mu-law at 8 kHz), and every utterance it finalises is decoded again by each
variant:
  partial, whole 30 s    greedy, no timestamps, on Whisper's whole window (the previous partial)
  partial, audio+P s     the same on a window of the utterance plus P s (this worker: P = 8)
  final, fallback        beam 5 + word timestamps with faster-whisper's temperature fallback
                         (the previous final)
  final, temp 0, beam B  the same at temperature 0 with a token budget (this worker's final,
                         beam 5 unless DALSTON_REALTIME_FINAL_BEAM_SIZE says otherwise)
  final, audio+8, min M  this worker's final on the utterance + 8 s of the window, at least M s
  moonshine base-en      Moonshine's base English model (`moonshine_cpp`, the only streaming-
                         oriented English weights a package ships): its encoder's cost follows
                         the audio, not a 30 s window; text only (no word timestamps)
Reported per split: WER of the decodes against the recording's text, and the CPU time per decode
(median, p95, max; CPU time, so other load on the machine does not blur it), with the ratio of
the total to the previous variant; then every utterance a shorter final window reads
differently from the whole window. The tune split chose the pad and the final's options; the
held-out split and the diarization dev set ("speakers": real people, flite and espeak) were not
looked at for that.

Measured 2026-12-01 (tiny.en, CI running beside it): finals on beam 2 / 1 cost 0.88 / 0.81 of
beam 5 (WER tune 0.181 -> 0.177 / 0.225): the encoder's 30 s window is most of a final's cost.
Shorter final windows (min 15 / 20 / 25 s) cost 0.46-0.86 of the whole and read about as well in
aggregate (speakers 0.109 -> 0.119 / 0.107 / 0.105; G.711 0.170 -> 0.161 / 0.166 / 0.165; tune
and held out better), but the listing shows Whisper making up text on them ("And I think we are
done for today." after a 7 s turn at every minimum, "bye, bye, bye", "35,000,000,000,000"), so
finals keep the whole window.
Moonshine base-en (moonshine_cpp 0.1.4, --moonshine, same run, CI beside it) instead of tiny.en's
final reads a little better (WER tune 0.181 -> 0.162, held out 0.213 -> 0.189) but costs 4.49 / 3.26
times the CPU, has no word timestamps, and the process dies (a crash inside the library, no Python
error) on the speakers split's 26.8 s utterance of reading_real_2spk: no cheaper final there.
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
import soundfile
import soxr

from realtime_worker.asr import SAMPLE_RATE, Decoded, FasterWhisperBackend
from realtime_worker.audio import MULAW
from realtime_worker.scheduler import DecodeScheduler
from realtime_worker.session import Session
from shared.realtime import protocol as p
from shared.settings import Settings

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
SPLITS = {
    "tune": [FIXTURES / f"{name}.wav" for name in ("speech_en", "long_en", "short_en", "conversation_en")],
    "heldout": [FIXTURES / f"{name}.wav" for name in ("meeting_en", "duo_en", "pii_call_en", "pii_call2_en")],
    # The diarization dev set's recordings with a text: real people (a telephone call, LibriVox
    # readers), flite and espeak voices; never used to choose a realtime decode option.
    "speakers": sorted(text.with_suffix(".flac") for text in (FIXTURES / "diarize_dev").glob("*.txt")),
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


def mulaw(audio: np.ndarray) -> bytes:
    """G.711 mu-law bytes of float audio at 8 kHz: the nearest of the 256 levels."""
    order = np.argsort(MULAW)
    levels = MULAW[order]
    at = np.clip(np.searchsorted(levels, audio), 1, 255)
    nearer = np.where(np.abs(levels[at - 1] - audio) <= np.abs(levels[at] - audio), at - 1, at)
    return order[nearer].astype(np.uint8).tobytes()


async def utterances(backend: FasterWhisperBackend, path: Path, g711: bool) -> list[np.ndarray]:
    """The utterances a realtime session finalises from `path` streamed as pcm16 at 16 kHz or,
    with `g711`, as G.711 mu-law at 8 kHz (a telephone line)."""
    audio, rate = soundfile.read(path, dtype="float32")
    audio = audio if audio.ndim == 1 else audio.mean(axis=1)
    audio = np.clip(np.concatenate([audio, np.zeros(rate)]), -1, 1)
    if g711:
        pcm = mulaw(soxr.resample(audio, rate, 8000))
        params = p.SessionParams(encoding="mulaw", sample_rate=8000, language="en", endpoint_ms=500, interim_results=False)
    else:
        pcm = (soxr.resample(audio, rate, 16000) * 32767).astype("<i2").tobytes()
        params = p.SessionParams(word_timestamps=False, language="en", endpoint_ms=500, interim_results=False)
    recording = Recording(backend)
    scheduler = DecodeScheduler(recording)
    scheduler.start()

    async def send(_msg: p.ServerMessage) -> None:
        return None

    session = Session(path.stem, params, scheduler, Settings(realtime_lag_hold_s=1e4, realtime_lag_max_s=1e4), send)
    step = 1600 if g711 else 3200  # 100 ms
    for i in range(0, len(pcm), step):
        await session._on_audio(pcm[i : i + step], 0.0)
    await session._on_text(json.dumps({"type": "end"}), 0.0)
    await session.process()
    await scheduler.close()
    return recording.finals


def moonshine() -> Callable[[np.ndarray], str]:
    """Moonshine base-en as `moonshine_cpp` ships it, called through its C API (the package's
    own `transcribe` of an array does not run: it names a `ctypes.c_float_p` that does not exist)."""
    import ctypes

    try:
        import moonshine_cpp
    except ImportError:
        raise SystemExit("--moonshine needs the moonshine_cpp package: pip install moonshine_cpp==0.1.4") from None
    model = moonshine_cpp.MoonshineModel()  # base-en, from the package's own files

    def decode(audio: np.ndarray) -> str:
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        text = ctypes.c_char_p(0)
        pointer = audio.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        if moonshine_cpp.moonshine_lib.moonshine_transcribe(model.model_handle, pointer, audio.size, ctypes.byref(text)):
            raise RuntimeError("moonshine_transcribe failed")
        out = (text.value or b"").decode()
        moonshine_cpp.moonshine_lib.moonshine_free_text(text)
        return out

    return decode


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
    parser.add_argument("--final-beams", default="5", help="beam sizes of this worker's final to compare")
    parser.add_argument("--final-mins", default="", help="finals on the utterance + 8 s, at least this many s, to compare")
    parser.add_argument("--finals-only", action="store_true", help="leave out the partials and the previous final")
    parser.add_argument("--g711", action="store_true", help="every recording also over G.711 mu-law at 8 kHz")
    parser.add_argument("--moonshine", action="store_true", help="also Moonshine base-en (needs moonshine_cpp)")
    args = parser.parse_args()
    backend = FasterWhisperBackend(args.model, Settings(whisper_cpu_threads=2))

    def partial(pad: float | None) -> Callable[[np.ndarray], str]:
        def decode(audio: np.ndarray) -> str:
            backend.partial_pad_s = pad
            return backend.decode(audio, final=False, words=False, language="en", prompt=None).text

        return decode

    def final(beam: int, min_window_s: float | None = None) -> Callable[[np.ndarray], str]:
        def decode(audio: np.ndarray) -> str:
            backend.final_beam, backend.final_min_window_s = beam, min_window_s
            return backend.decode(audio, final=True, words=True, language="en", prompt=None).text

        return decode

    beams = [int(beam) for beam in args.final_beams.split(",")]
    variants: list[tuple[str, Callable[[np.ndarray], str], bool]] = [  # (name, decode, is the previous one)
        *((f"final, temp 0, beam {beam}", final(beam), args.finals_only and i == 0) for i, beam in enumerate(beams)),
        *(
            (f"final, audio+8, min {m:g}", final(beams[0], m), False)
            for m in map(float, filter(None, args.final_mins.split(",")))
        ),
    ]
    if args.moonshine:
        variants.append(("moonshine base-en", moonshine(), False))
    if not args.finals_only:
        variants[:0] = [
            ("partial, whole 30 s", partial(None), True),
            *((f"partial, audio+{pad:g} s", partial(pad), False) for pad in map(float, args.pads.split(","))),
            ("final, fallback", lambda audio: previous_final(backend, audio), True),
        ]
    print(f"model {args.model}, 2 threads; each finalised utterance decoded by each variant; CPU ms per decode")
    print(
        f"{'split':<14} {'variant':<24} {'utt':>4} {'audio s':>7} {'WER':>6} {'median':>7} {'p95':>6} {'max':>6} {'CPU ratio':>9}"
    )
    apart: list[str] = []
    for split, paths in SPLITS.items():
        for g711 in [False, True] if args.g711 else [False]:
            label_split = f"{split}{'/g711' if g711 else ''}"
            pieces = {path: asyncio.run(utterances(backend, path, g711)) for path in paths}
            baseline = 0.0
            first_final: dict[tuple[Path, int], str] = {}
            for label, decode, previous in variants:
                times: list[float] = []
                errors = total = 0
                for path, audios in pieces.items():
                    texts = []
                    for i, audio in enumerate(audios):
                        began = time.process_time()
                        texts.append(decode(audio))
                        times.append(time.process_time() - began)
                        if label.startswith("final, temp 0"):
                            first_final.setdefault((path, i), texts[-1])
                        elif label.startswith("final, audio+"):
                            apart += disagreement(label_split, label, path, audio, first_final[(path, i)], texts[-1])
                    reference, hypothesis = words(path.with_suffix(".txt").read_text()), words(" ".join(texts))
                    out = jiwer.process_words(reference, hypothesis)
                    errors += out.substitutions + out.deletions + out.insertions
                    total += len(reference.split())
                baseline = sum(times) if previous else baseline
                seconds = sum(audio.size for audios in pieces.values() for audio in audios) / SAMPLE_RATE
                ms = np.array(times) * 1000
                print(
                    f"{label_split:<14} {label:<24} {len(times):>4} {seconds:>7.1f} {errors / total:>6.3f} {np.median(ms):>7.0f}"
                    f" {np.percentile(ms, 95):>6.0f} {ms.max():>6.0f} {sum(times) / baseline:>9.2f}",
                    flush=True,
                )
    if apart:
        print("\nUtterances a shorter final window reads differently (word edit rate >= 0.3 against the whole window's):")
        print("\n".join(apart))


def disagreement(split: str, label: str, path: Path, audio: np.ndarray, whole: str, short: str) -> list[str]:
    a, b = words(whole), words(short)
    if a == b or (a and jiwer.wer(a, b) < 0.3) or not (a or b):
        return []
    return [f"  {split} {path.stem} {audio.size / SAMPLE_RATE:.1f} s, {label}:\n    whole: {whole}\n    short: {short}"]


if __name__ == "__main__":
    main()
