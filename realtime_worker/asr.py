"""Streaming ASR backends behind one interface. A worker loads each model once and every
session shares it through one `realtime_worker.scheduler.DecodeScheduler`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from faster_whisper import WhisperModel

from shared import model_registry
from shared.catalogue import realtime_backend
from shared.settings import Settings

SAMPLE_RATE = 16_000
FRAMES_PER_S = 100  # Whisper's log-mel frames
# A partial's encoder sees its audio and this much of the silence padding, not Whisper's whole
# 30 s window: a 3 s utterance's partial encodes 11 s instead of 30. On the tune fixtures
# (bench/realtime_decode.py) greedy partials read as well as with the whole window from 4 s on
# and fall apart at 2 s (a repetition loop); held out, 4 s fails too and 8 s reads as the whole
# window does. Finals keep the whole window. On the utterance + 8 s, at least 15, 20 or 25 s,
# they cost 0.5-0.85 of it and read about as well in aggregate (bench/realtime_decode.py
# --final-mins, 2026-12-01: WER 0.109 whole vs 0.119 / 0.107 / 0.105 on the diarization dev
# set's real and synthetic speech), but utterance by utterance Whisper then makes up text a user
# would read as said ("And I think we are done for today" after a 7 s turn even at 25 s, "bye,
# bye, bye", "35,000,000,000,000" over G.711), misreads short ones ("Hello world" over G.711
# became "The low world") and loses keyterm prompts' effect.
PARTIAL_CONTEXT_PAD_S = 8.0
# A decode's token budget: English speech runs at about 4 tokens per second; a decoder stuck
# repeating itself stops here instead of at Whisper's 448 (which also holds the prompt, up to
# 224 tokens: hence the ceiling).
TOKENS_PER_S = 8
MAX_NEW_TOKENS = 200


class BackendUnavailable(RuntimeError):
    """A model cannot be served here; the message says what to install or configure."""


@dataclass(frozen=True)
class DecodedWord:
    text: str
    start: float  # seconds from the start of the decoded audio
    end: float
    probability: float | None


@dataclass(frozen=True)
class Decoded:
    text: str
    words: list[DecodedWord] = field(default_factory=list)
    language: str | None = None


class Backend(Protocol):
    name: str

    def decode(self, audio: np.ndarray, *, final: bool, words: bool, language: str | None, prompt: str | None) -> Decoded:
        """Transcribe one utterance (float32, 16 kHz). Partials may trade accuracy for speed."""
        ...


class WindowedWhisper(WhisperModel):
    """faster-whisper's model whose encoder may see less than the 30 s window: faster-whisper
    pads every decode to 30 s, and the encoder's cost follows the window, not the audio.
    `window_frames` is set around one decode; a model's decodes run one at a time
    (`realtime_worker.scheduler.DecodeScheduler`)."""

    window_frames: int | None = None

    def encode(self, features: np.ndarray) -> Any:
        if self.window_frames is not None:
            features = features[..., : self.window_frames]
        return super().encode(features)


class FasterWhisperBackend:
    """VAD-chunked Whisper: the session re-decodes the growing utterance for partials.

    Finals use the whole 30 s window (the accuracy Whisper was trained for). Partials, which
    the final replaces anyway, encode only their audio and `PARTIAL_CONTEXT_PAD_S` of padding
    when the language is known (language detection keeps the whole window), so they cost a
    fraction of a final and a final seldom waits long behind one."""

    def __init__(self, name: str, settings: Settings) -> None:
        try:
            entry = model_registry.resolve(name, settings)
        except model_registry.UnknownModel as exc:
            raise BackendUnavailable(str(exc)) from exc
        self.name = entry.name
        self.english_only = entry.english_only
        self.final_beam = settings.realtime_final_beam_size or settings.whisper_beam_size
        self.partial_pad_s: float | None = PARTIAL_CONTEXT_PAD_S  # None: the whole window (benches compare)
        # Finals on the utterance + PARTIAL_CONTEXT_PAD_S, at least this much (benches compare).
        self.final_min_window_s: float | None = None
        try:
            self.model = model_registry.load_whisper(entry, settings, WindowedWhisper)
        except Exception as exc:
            raise BackendUnavailable(f"cannot load model {entry.name!r} from {entry.source}: {exc}") from exc

    def window_s(self, seconds: float, *, final: bool, language: str | None, prompt: str | None) -> float | None:
        """How much of the 30 s window the encoder sees for an utterance; None: all of it."""
        if not language:
            return None  # language detection reads the whole window
        if not final:
            return None if self.partial_pad_s is None else seconds + self.partial_pad_s
        if prompt or self.final_min_window_s is None:
            return None
        window = max(seconds + PARTIAL_CONTEXT_PAD_S, self.final_min_window_s)
        return window if window < 30 else None

    def decode(self, audio: np.ndarray, *, final: bool, words: bool, language: str | None, prompt: str | None) -> Decoded:
        if self.english_only and not language:
            language = "en"  # skips language detection, which is a whole extra encoder pass
        seconds = audio.size / SAMPLE_RATE
        options: dict[str, Any] = (
            {"beam_size": self.final_beam, "word_timestamps": words}
            if final
            # Partials: greedy, no timestamp tokens: the cheapest decode.
            else {"beam_size": 1, "without_timestamps": True}
        )
        # No temperature fallback: faster-whisper decodes again at rising temperatures (up to
        # five more times) when a result reads unsure or repetitive, which multiplies the cost of
        # exactly the utterances a user is already waiting on; at temperature 0 the finals read
        # as well on the tune and held-out fixtures (bench/realtime_decode.py).
        options["temperature"] = 0.0
        options["max_new_tokens"] = min(MAX_NEW_TOKENS, int(16 + TOKENS_PER_S * seconds))
        window_s = self.window_s(seconds, final=final, language=language, prompt=prompt)
        if window_s is not None:
            self.model.window_frames = int(window_s * FRAMES_PER_S) // 2 * 2
        try:
            segments, info = self.model.transcribe(
                audio,
                language=language,
                vad_filter=False,
                condition_on_previous_text=False,
                initial_prompt=prompt,
                **options,
            )
            out_words: list[DecodedWord] = []
            texts: list[str] = []
            for segment in segments:  # a generator: the decoding happens here
                texts.append(segment.text.strip())
                for w in segment.words or []:
                    out_words.append(DecodedWord(w.word.strip(), round(w.start, 3), round(w.end, 3), round(w.probability, 4)))
        finally:
            self.model.window_frames = None
        return Decoded(" ".join(t for t in texts if t), out_words, info.language)


class ParakeetBackend:
    """NVIDIA Parakeet through NeMo, decoded per VAD utterance like the Whisper backend.

    Weights are never downloaded here: `DALSTON_PARAKEET_MODELS` maps the model name to a
    local `.nemo` file (or, where the operator allows downloads, a Hugging Face id).
    """

    def __init__(self, name: str, settings: Settings) -> None:
        self.name = name
        source = settings.parakeet_models.get(name)
        if not source:
            raise BackendUnavailable(
                f"model {name!r} is a Parakeet model but no weights are configured: set "
                f'DALSTON_PARAKEET_MODELS=\'{{"{name}": "/path/to/{name}.nemo"}}\''
            )
        try:
            import nemo.collections.asr as nemo_asr
        except ImportError as exc:
            raise BackendUnavailable(
                f"model {name!r} needs NVIDIA NeMo: install it with `pip install 'dalston[parakeet]'`"
            ) from exc
        try:
            if source.endswith(".nemo"):
                if not Path(source).is_file():
                    raise FileNotFoundError(f"{source} does not exist")
                self.model = nemo_asr.models.ASRModel.restore_from(source, map_location=settings.whisper_device)
            else:
                self.model = nemo_asr.models.ASRModel.from_pretrained(source, map_location=settings.whisper_device)
            self.model.eval()
        except Exception as exc:
            raise BackendUnavailable(f"cannot load Parakeet model {name!r} from {source}: {exc}") from exc

    def decode(self, audio: np.ndarray, *, final: bool, words: bool, language: str | None, prompt: str | None) -> Decoded:
        timestamps = final and words
        hypothesis = self.model.transcribe([audio], batch_size=1, timestamps=timestamps, verbose=False)[0]
        text = hypothesis.text if hasattr(hypothesis, "text") else str(hypothesis)
        out_words: list[DecodedWord] = []
        if timestamps:
            for w in (getattr(hypothesis, "timestamp", None) or {}).get("word", []):
                out_words.append(DecodedWord(w["word"], round(float(w["start"]), 3), round(float(w["end"]), 3), None))
        return Decoded(text.strip(), out_words, language)


# One loader per shared.catalogue.REALTIME_BACKENDS entry.
BACKENDS: dict[str, Callable[[str, Settings], Backend]] = {
    "faster-whisper": FasterWhisperBackend,
    "parakeet": ParakeetBackend,
}


def load_backend(name: str, settings: Settings) -> Backend:
    """Load model `name` with the backend the catalogue assigns it (raises BackendUnavailable)."""
    return BACKENDS[realtime_backend(name, settings).id](name, settings)
