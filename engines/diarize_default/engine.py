"""The offline default diarizer: Silero VAD → resemblyzer embeddings → clustering → turns.

Works on CPU with weights that ship inside the `silero-vad` and `resemblyzer` packages
(the `diarize` extra), so speaker detection needs no download and no token:

1. Silero VAD finds the speech regions.
2. resemblyzer's speaker encoder embeds 1.6 s windows slid over each region.
3. Clustering (clustering.py): the speaker count is the one asked for, or estimated from
   the eigengap of the windows' nearest-neighbour graph within `min_speakers`/`max_speakers`;
   spectral clustering of that graph into that many voices.
4. Every 10 ms speech frame takes the label of the nearest window; runs shorter than
   `MIN_TURN_S` are absorbed by their neighbours, and same-speaker turns separated by a
   short pause are joined.
5. Each speaker's voiceprint (mean embedding of its windows) is reported and matched to the
   job's enrolled voices (voices.py).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engines.base import EngineError, config_of, read_input, write_output
from engines.diarize_default import voices
from engines.diarize_default.clustering import cluster
from shared.audio import TARGET_RATE, read_wav
from shared.contracts import (
    DiarizeConfig,
    DiarizeOutput,
    PrepareOutput,
    SpeakerOptions,
    SpeakerTurn,
    TaskMessage,
    Voiceprint,
)
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore

if TYPE_CHECKING:
    import torch
    from resemblyzer import VoiceEncoder

FRAME_S = 0.01  # resemblyzer's mel frame step
WINDOW_FRAMES = 160  # resemblyzer's partial utterance: 1.6 s
HOP_FRAMES = 40  # 0.4 s between window starts
MAX_WINDOWS = 4000  # past this the hop grows, so clustering memory stays bounded (n² distances)
MIN_TURN_S = 0.5
JOIN_GAP_S = 1.0
BATCH = 64


class DefaultDiarizerEngine:
    engine_id = "diarize-default"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._vad: torch.nn.Module | None = None  # Silero VAD's TorchScript model
        self._encoder: VoiceEncoder | None = None

    def load(self) -> None:
        import torch

        threads = self.settings.diarize_cpu_threads or torch.get_num_threads()
        try:
            from resemblyzer import VoiceEncoder
            from silero_vad import load_silero_vad
        except ImportError as exc:
            raise RuntimeError(f"the default diarizer needs the 'diarize' extra: pip install 'dalston[diarize]' ({exc})") from exc
        # `import silero_vad` pins torch to one thread for the whole process: undo that.
        torch.set_num_threads(threads)
        self._vad = load_silero_vad()
        self._encoder = VoiceEncoder("cpu", verbose=False)
        # First calls compile (numba in librosa's mel filters, TorchScript): pay that now, not in a task.
        from resemblyzer.audio import wav_to_mel_spectrogram

        noise = np.random.default_rng(0).normal(0, 0.1, 2 * TARGET_RATE).astype(np.float32)
        self.diarize(noise, SpeakerOptions())
        with torch.inference_mode():
            self._encoder(torch.from_numpy(_fit(wav_to_mel_spectrogram(noise))[None]))

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        prepared = read_input(store, task, "prepare", PrepareOutput)
        path = workdir / "audio.wav"
        store.get_file(prepared.audio_key, path)
        audio, rate = read_wav(path)
        if rate != TARGET_RATE or audio.ndim != 1:
            raise EngineError(f"{prepared.audio_key} is not 16 kHz mono (rate={rate}, shape={audio.shape})", retryable=False)
        began = time.perf_counter()
        config = config_of(task, DiarizeConfig)
        turns, details, found = self.diarize_with_voices(audio.astype(np.float32), config)
        matches = voices.match(found, config.known_speakers, self.settings.speaker_match_threshold)
        elapsed = time.perf_counter() - began
        duration = len(audio) / TARGET_RATE
        output = DiarizeOutput(
            turns=turns,
            num_speakers=len({t.speaker for t in turns}),
            duration=duration,
            details={
                "engine_id": self.engine_id,
                **details,
                "processing_seconds": round(elapsed, 3),
                "realtime_factor": round(elapsed / duration, 4) if duration else None,
                **({"known_speakers": len(config.known_speakers)} if config.known_speakers else {}),
            },
            voiceprints=found,
            matches=matches,
        )
        return write_output(store, task, output)

    def diarize(self, audio: np.ndarray, options: SpeakerOptions) -> tuple[list[SpeakerTurn], dict]:
        turns, details, _ = self.diarize_with_voices(audio, options)
        return turns, details

    def diarize_with_voices(
        self, audio: np.ndarray, options: SpeakerOptions
    ) -> tuple[list[SpeakerTurn], dict, dict[str, Voiceprint]]:
        """Turns, details, and each found speaker's voiceprint (voices.py)."""
        if self._vad is None or self._encoder is None:
            raise RuntimeError("load() first")
        import torch
        from resemblyzer.audio import wav_to_mel_spectrogram
        from silero_vad import get_speech_timestamps

        regions = [
            (r["start"], r["end"]) for r in get_speech_timestamps(torch.from_numpy(audio), self._vad, sampling_rate=TARGET_RATE)
        ]  # in samples
        threshold = options.threshold if options.threshold is not None else self.settings.diarize_threshold
        details = {"speech_seconds": round(sum(e - s for s, e in regions) / TARGET_RATE, 3), "threshold": threshold}
        if not regions:
            return [], {**details, "windows": 0}, {}
        mel = wav_to_mel_spectrogram(audio)  # (frames, 40), one frame per 10 ms
        frame_regions = [(s // 160, min(len(mel), math.ceil(e / 160))) for s, e in regions]
        frame_regions = [(a, b) for a, b in frame_regions if b > a]
        spans = window_spans(frame_regions)
        windows = np.stack([_fit(mel[a:b]) for a, b in spans])
        with torch.inference_mode():
            embeddings = np.concatenate(
                [self._encoder(torch.from_numpy(windows[i : i + BATCH])).numpy() for i in range(0, len(windows), BATCH)]
            )
        weights = np.array([b - a for a, b in spans], dtype=float) * FRAME_S
        labels = cluster(embeddings, spans, options, threshold, weights)
        turns = frames_to_turns(frame_regions, spans, labels)
        found = voices.voiceprints(embeddings, [(a * FRAME_S, b * FRAME_S) for a, b in spans], turns)
        return turns, {**details, "windows": len(spans)}, found


def _fit(frames: np.ndarray) -> np.ndarray:
    """A window of exactly WINDOW_FRAMES: short regions are repeated rather than zero-padded,
    so the encoder hears only speech."""
    if len(frames) >= WINDOW_FRAMES:
        return frames[:WINDOW_FRAMES]
    reps = math.ceil(WINDOW_FRAMES / len(frames))
    return np.tile(frames, (reps, 1))[:WINDOW_FRAMES]


def window_spans(regions: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Frame spans of the embedding windows: slid over each speech region, one per short region."""
    total = sum(b - a for a, b in regions)
    hop = max(HOP_FRAMES, math.ceil(total / MAX_WINDOWS))
    spans = []
    for a, b in regions:
        start = a
        while True:
            end = min(start + WINDOW_FRAMES, b)
            spans.append((start, end))
            if end >= b:
                break
            start += hop
    return spans


def frames_to_turns(regions: list[tuple[int, int]], spans: list[tuple[int, int]], labels: np.ndarray) -> list[SpeakerTurn]:
    """Label each speech frame with its nearest window's cluster, smooth, and cut into turns."""
    centers = np.array([(a + b) / 2 for a, b in spans])
    runs: list[list[int]] = []  # [label, start_frame, end_frame]
    for a, b in regions:
        frames = np.arange(a, b)
        inside = np.flatnonzero([(s >= a and e <= b) for s, e in spans])
        nearest = inside[np.abs(centers[inside][None, :] - frames[:, None]).argmin(axis=1)]
        frame_labels = labels[nearest]
        region_runs: list[list[int]] = []
        for f, label in zip(frames, frame_labels):
            if region_runs and region_runs[-1][0] == label:
                region_runs[-1][2] = int(f) + 1
            else:
                region_runs.append([int(label), int(f), int(f) + 1])
        runs += _smooth(region_runs)

    # Speaker names by first appearance: speaker_0 talks first.
    names: dict[int, str] = {}
    turns: list[SpeakerTurn] = []
    for label, start, end in runs:
        name = names.setdefault(label, f"speaker_{len(names)}")
        if turns and turns[-1].speaker == name and start * FRAME_S - turns[-1].end <= JOIN_GAP_S:
            turns[-1] = turns[-1].model_copy(update={"end": round(float(end) * FRAME_S, 3)})
        else:
            turns.append(SpeakerTurn(speaker=name, start=round(float(start) * FRAME_S, 3), end=round(float(end) * FRAME_S, 3)))
    return turns


def _smooth(runs: list[list[int]]) -> list[list[int]]:
    """Within one speech region, runs shorter than MIN_TURN_S join the longer neighbour."""
    min_frames = int(MIN_TURN_S / FRAME_S)
    while len(runs) > 1:
        i = min(range(len(runs)), key=lambda k: runs[k][2] - runs[k][1])
        if runs[i][2] - runs[i][1] >= min_frames:
            break
        neighbours = [j for j in (i - 1, i + 1) if 0 <= j < len(runs)]
        j = max(neighbours, key=lambda k: runs[k][2] - runs[k][1])
        lo, hi = min(i, j), max(i, j)
        merged = [runs[j][0], runs[lo][1], runs[hi][2]]
        runs = runs[:lo] + [merged] + runs[hi + 1 :]
        # Neighbours with the same label are one run.
        joined: list[list[int]] = []
        for run in runs:
            if joined and joined[-1][0] == run[0]:
                joined[-1][2] = run[2]
            else:
                joined.append(run)
        runs = joined
    return runs
