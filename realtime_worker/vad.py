"""Streaming Silero VAD on the ONNX model that ships inside faster-whisper (no torch).

The model reads 512-sample frames (32 ms at 16 kHz), each preceded by the previous 64
samples of context, and carries an LSTM state between calls: one `StreamingVad` per session.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np

FRAME = 512
CONTEXT = 64
FRAME_S = FRAME / 16_000


@lru_cache
def _session():
    import onnxruntime
    from faster_whisper.utils import get_assets_path

    opts = onnxruntime.SessionOptions()
    # Tiny model: one thread, so VAD never competes with the ASR decode for cores.
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    path = os.path.join(get_assets_path(), "silero_vad_v6.onnx")
    return onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"], sess_options=opts)


def load() -> None:
    _session()


class StreamingVad:
    def __init__(self) -> None:
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)

    def process(self, audio: np.ndarray) -> np.ndarray:
        """Speech probabilities for each complete 32 ms frame now available."""
        buf = np.concatenate([self._pending, audio]) if self._pending.size else audio
        n = buf.size // FRAME
        self._pending = buf[n * FRAME :].copy()
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        frames = buf[: n * FRAME].reshape(n, FRAME)
        contexts = np.vstack([self._context[None, :], frames[:-1, -CONTEXT:]])
        batch = np.concatenate([contexts, frames], axis=1).astype(np.float32, copy=False)
        self._context = frames[-1, -CONTEXT:].copy()
        probs, self._h, self._c = _session().run(None, {"input": batch, "h": self._h, "c": self._c})
        return np.asarray(probs, dtype=np.float32).reshape(-1)
