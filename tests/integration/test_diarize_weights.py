"""Engines that need weights we do not have: the real code path fails with a clear message."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from engines.align.engine import Wav2Vec2AlignEngine, ctc_align
from engines.base import EngineError
from engines.pyannote.engine import PyannoteEngine
from shared.settings import Settings


def test_pyannote_without_a_model_says_what_to_configure() -> None:
    engine = PyannoteEngine(Settings(pyannote_model=None))
    engine.load()  # stays up
    with pytest.raises(EngineError, match="DALSTON_PYANNOTE_MODEL") as info:
        engine.pipeline()
    assert info.value.retryable


def test_pyannote_with_a_missing_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="does not exist"):
        PyannoteEngine(Settings(pyannote_model=str(tmp_path / "nope"))).pipeline()


def test_aligner_without_a_model_says_what_to_configure(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="DALSTON_ALIGN_MODEL"):
        Wav2Vec2AlignEngine(Settings(align_model=None)).model()
    with pytest.raises(EngineError, match="does not exist"):
        Wav2Vec2AlignEngine(Settings(align_model=str(tmp_path / "nope"))).model()


@pytest.mark.skipif(
    not os.environ.get("DALSTON_PYANNOTE_MODEL"), reason="pyannote weights are not available here (set DALSTON_PYANNOTE_MODEL)"
)
def test_pyannote_loads_configured_weights() -> None:
    assert PyannoteEngine(Settings()).pipeline() is not None


@pytest.mark.skipif(
    not os.environ.get("DALSTON_ALIGN_MODEL"), reason="wav2vec2 weights are not available here (set DALSTON_ALIGN_MODEL)"
)
def test_aligner_loads_configured_weights() -> None:
    assert Wav2Vec2AlignEngine(Settings()).model() is not None


def test_ctc_alignment_finds_the_emitting_frames() -> None:
    frames, vocabulary = 20, 5
    log_probs = np.full((frames, vocabulary), np.log(0.01))
    log_probs[:, 0] = np.log(0.9)  # blank
    for frame, token in [(3, 1), (8, 2), (9, 3), (15, 4)]:
        log_probs[frame, token], log_probs[frame, 0] = np.log(0.95), np.log(0.01)
    assert ctc_align(log_probs, [1, 2, 3, 4], blank=0) == [3, 8, 9, 15]
    assert ctc_align(log_probs, [], blank=0) == []
    with pytest.raises(ValueError):
        ctc_align(log_probs[:2], [1, 2, 3], blank=0)
