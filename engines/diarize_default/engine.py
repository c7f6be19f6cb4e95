"""The offline default diarizer: Silero VAD → resemblyzer embeddings → clustering → turns.

Works on CPU with weights that ship inside the `silero-vad` and `resemblyzer` packages
(the `diarize` extra), so speaker detection needs no download and no token:

1. Silero VAD finds the speech regions.
2. resemblyzer's speaker encoder embeds 1.6 s windows slid over each region.
3. Average-linkage agglomerative clustering on cosine distance: cut at the requested
   speaker count, or at `threshold` (voices closer than it are one speaker) bounded by
   `min_speakers`/`max_speakers`.
4. Every 10 ms speech frame takes the label of the nearest window; runs shorter than
   `MIN_TURN_S` are absorbed by their neighbours, and same-speaker turns separated by a
   short pause are joined.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engines.base import EngineError, config_of, read_input, write_output
from shared.audio import TARGET_RATE, read_wav
from shared.contracts import DiarizeConfig, DiarizeOutput, PrepareOutput, SpeakerOptions, SpeakerTurn, TaskMessage
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
MIN_WINDOW_S = 1.0
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
        turns, details = self.diarize(audio.astype(np.float32), config_of(task, DiarizeConfig))
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
            },
        )
        return write_output(store, task, output)

    def diarize(self, audio: np.ndarray, options: SpeakerOptions) -> tuple[list[SpeakerTurn], dict]:
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
            return [], {**details, "windows": 0}
        mel = wav_to_mel_spectrogram(audio)  # (frames, 40), one frame per 10 ms
        frame_regions = [(s // 160, min(len(mel), math.ceil(e / 160))) for s, e in regions]
        frame_regions = [(a, b) for a, b in frame_regions if b > a]
        spans = window_spans(frame_regions)
        windows = np.stack([_fit(mel[a:b]) for a, b in spans])
        with torch.inference_mode():
            embeddings = np.concatenate(
                [self._encoder(torch.from_numpy(windows[i : i + BATCH])).numpy() for i in range(0, len(windows), BATCH)]
            )
        labels = cluster(embeddings, options, threshold, weights=np.array([b - a for a, b in spans], dtype=float) * FRAME_S)
        turns = frames_to_turns(frame_regions, spans, labels)
        return turns, {**details, "windows": len(spans)}


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


def cluster(embeddings: np.ndarray, options: SpeakerOptions, threshold: float, weights: np.ndarray) -> np.ndarray:
    """Cluster labels (0-based) per embedding. `weights`: seconds of speech each one covers.

    Windows under MIN_WINDOW_S of speech embed poorly and, as outliers, would dominate
    average linkage: the clusters are formed from the full windows, and the short ones
    join the nearest cluster afterwards.
    """
    full = weights >= MIN_WINDOW_S
    if full.sum() < 2:
        full = np.ones(len(embeddings), dtype=bool)
    labels = np.full(len(embeddings), -1)
    labels[full] = _cluster(embeddings[full], options, threshold, weights[full])
    centroids = {c: _unit(embeddings[labels == c].mean(axis=0)) for c in set(labels[full])}
    for i in np.flatnonzero(~full):
        labels[i] = max(centroids, key=lambda c: float(embeddings[i] @ centroids[c]))
    return labels


def _cluster(embeddings: np.ndarray, options: SpeakerOptions, threshold: float, weights: np.ndarray) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import pdist

    n = len(embeddings)
    if n == 1:
        return np.zeros(1, dtype=int)
    tree = linkage(pdist(embeddings, "cosine"), "average")
    if options.num_speakers:
        return fcluster(tree, min(options.num_speakers, n), "maxclust") - 1
    labels = fcluster(tree, threshold, "distance") - 1
    lowest = options.min_speakers or 1
    highest = min(options.max_speakers or n, n)
    count = len(set(labels))
    if count < lowest or count > highest:
        return fcluster(tree, min(max(count, lowest), highest), "maxclust") - 1
    return _absorb_small(embeddings, labels, weights, keep=lowest)


def _absorb_small(
    embeddings: np.ndarray, labels: np.ndarray, weights: np.ndarray, *, keep: int, min_seconds: float = 2.0
) -> np.ndarray:
    """With an automatic count, a cluster holding under `min_seconds` of speech is an outlier
    (a cough, an odd window), not a person: give its windows to the nearest real cluster."""
    labels = labels.copy()
    while True:
        sizes = {c: weights[labels == c].sum() for c in set(labels)}
        small = min(sizes, key=sizes.__getitem__)
        if sizes[small] >= min_seconds or len(sizes) <= keep:
            break
        centroids = {c: _unit(embeddings[labels == c].mean(axis=0)) for c in sizes if c != small}
        for i in np.flatnonzero(labels == small):
            labels[i] = max(centroids, key=lambda c: float(embeddings[i] @ centroids[c]))
    remap = {c: i for i, c in enumerate(sorted(set(labels)))}
    return np.array([remap[c] for c in labels])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v) or 1.0)


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
