"""Word timestamps by wav2vec2 CTC forced alignment (the WhisperX recipe).

For each transcribed segment, a wav2vec2 CTC model (`DALSTON_ALIGN_MODEL`: a local
directory or a hub id with `DALSTON_HF_TOKEN`, e.g. facebook/wav2vec2-base-960h) gives
per-frame character log-probabilities over the segment's audio; Viterbi alignment of the
segment's characters through them gives each word's start and end. Words whose letters
the model's vocabulary lacks (digits, other scripts) keep the transcriber's timestamps.
Needs the `align` extra (transformers); the stage is optional, so a failure here leaves
the transcriber's own timestamps and a warning.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import structlog

from engines.base import EngineError, read_input, write_output
from shared.audio import TARGET_RATE, read_wav
from shared.contracts import AlignOutput, PrepareOutput, TaskMessage, TranscribeOutput
from shared.settings import Settings, get_settings
from shared.storage import ObjectStore
from shared.transcript import Segment, Word

log = structlog.get_logger()
PAD_S = 0.1  # audio kept around each segment: its words may start a little early or end late


def ctc_align(log_probs: np.ndarray, tokens: list[int], blank: int) -> list[int]:
    """Viterbi forced alignment: the frame at which each of `tokens` is emitted.

    `log_probs` is (frames, vocabulary). The path emits the tokens in order, one frame
    each, and blank on every other frame (the usual simplification of CTC alignment).
    Raises ValueError when the audio has fewer frames than tokens.
    """
    frames, n = len(log_probs), len(tokens)
    if n == 0:
        return []
    if frames < n:
        raise ValueError(f"{frames} frames cannot hold {n} tokens")
    emit = log_probs[:, tokens]  # (frames, n)
    stay = log_probs[:, blank]
    # trellis[t, j]: best log-probability of having emitted j tokens after t frames.
    trellis = np.full((frames + 1, n + 1), -np.inf)
    trellis[0, 0] = 0.0
    for t in range(frames):
        trellis[t + 1, 0] = trellis[t, 0] + stay[t]
        trellis[t + 1, 1:] = np.maximum(trellis[t, 1:] + stay[t], trellis[t, :-1] + emit[t])
    emitted = [0] * n
    j = n
    for t in range(frames, 0, -1):
        if j == 0:
            break
        if trellis[t - 1, j - 1] + emit[t - 1, j - 1] >= trellis[t - 1, j] + stay[t - 1]:
            emitted[j - 1] = t - 1
            j -= 1
    return emitted


class Wav2Vec2AlignEngine:
    engine_id = "phoneme-align"

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._model = None
        self._vocab: dict[str, int] = {}

    def load(self) -> None:
        try:
            self.model()
        except EngineError as exc:
            log.error("aligner_unavailable", error=exc.message)

    def model(self):
        if self._model is not None:
            return self._model
        source = self.settings.align_model
        if not source:
            raise EngineError(
                "phoneme-align has no model configured: set DALSTON_ALIGN_MODEL to a local wav2vec2 CTC model "
                "directory (e.g. a download of facebook/wav2vec2-base-960h)",
                retryable=False,
            )
        if source.startswith(("/", ".")) and not Path(source).exists():
            raise EngineError(f"phoneme-align model directory {source} does not exist (DALSTON_ALIGN_MODEL)", retryable=False)
        try:
            from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor
        except ImportError as exc:
            raise EngineError(f"transformers is not installed: pip install 'dalston[align]' ({exc})", retryable=False) from exc
        try:
            processor = Wav2Vec2Processor.from_pretrained(source, token=self.settings.hf_token)
            model = Wav2Vec2ForCTC.from_pretrained(source, token=self.settings.hf_token).eval()
        except Exception as exc:
            raise EngineError(f"cannot load alignment model {source!r}: {exc}", retryable=False) from exc
        self._processor, self._model = processor, model
        self._vocab = {k.lower(): v for k, v in processor.tokenizer.get_vocab().items()}
        return model

    def process(self, task: TaskMessage, store: ObjectStore, workdir: Path) -> str:
        model = self.model()
        prepared = read_input(store, task, "prepare", PrepareOutput)
        transcribed = read_input(store, task, "transcribe", TranscribeOutput)
        path = workdir / "audio.wav"
        store.get_file(prepared.audio_key, path)
        audio, _ = read_wav(path)
        began = time.perf_counter()
        segments = [self.align_segment(model, audio, s) for s in transcribed.segments]
        return write_output(
            store,
            task,
            AlignOutput(
                segments=segments,
                details={
                    "engine_id": self.engine_id,
                    "model": self.settings.align_model,
                    "processing_seconds": round(time.perf_counter() - began, 3),
                },
            ),
        )

    def align_segment(self, model, audio: np.ndarray, segment: Segment) -> Segment:
        import torch

        first = max(0, int((segment.start - PAD_S) * TARGET_RATE))
        last = min(len(audio), int((segment.end + PAD_S) * TARGET_RATE))
        clip = audio[first:last]
        if not segment.words or len(clip) < TARGET_RATE // 10:
            return segment
        inputs = self._processor(clip, sampling_rate=TARGET_RATE, return_tensors="pt")
        with torch.inference_mode():
            log_probs = torch.log_softmax(model(inputs.input_values).logits[0], dim=-1).numpy()
        seconds_per_frame = len(clip) / TARGET_RATE / len(log_probs)
        blank = self._processor.tokenizer.pad_token_id
        # Characters of the words the vocabulary can spell; the others keep their times.
        tokens, owners = [], []
        for i, word in enumerate(segment.words):
            letters = [c for c in word.text.lower() if c.isalnum() or c == "'"]
            if letters and all(c in self._vocab for c in letters):
                tokens += [self._vocab[c] for c in letters]
                owners += [i] * len(letters)
        try:
            emitted = ctc_align(log_probs, tokens, blank)
        except ValueError:
            return segment
        offset = first / TARGET_RATE
        words: list[Word] = list(segment.words)
        for i in set(owners):
            mine = [frame for frame, owner in zip(emitted, owners) if owner == i]
            start, end = mine[0], mine[-1] + 1
            words[i] = words[i].model_copy(
                update={"start": round(offset + start * seconds_per_frame, 3), "end": round(offset + end * seconds_per_frame, 3)}
            )
        return segment.model_copy(update={"words": words})
