"""Incoming audio frames -> float32 mono at 16 kHz, streaming (soxr keeps filter state)."""

from __future__ import annotations

import numpy as np
import soxr

from shared.audio import TARGET_RATE


class InvalidAudio(ValueError):
    """The frame cannot be audio in the negotiated format; the message is for the client."""


def _mulaw_table() -> np.ndarray:
    # G.711 mu-law expansion of every byte value, scaled to [-1, 1].
    u = ~np.arange(256, dtype=np.uint8)
    sign = (u & 0x80) != 0
    exponent = (u >> 4) & 0x07
    mantissa = (u & 0x0F).astype(np.int32)
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return (np.where(sign, -magnitude, magnitude) / 32768.0).astype(np.float32)


MULAW = _mulaw_table()


class AudioDecoder:
    def __init__(self, encoding: str, sample_rate: int) -> None:
        self.encoding = encoding
        self.sample_rate = sample_rate
        self._resampler = (
            None if sample_rate == TARGET_RATE else soxr.ResampleStream(sample_rate, TARGET_RATE, 1, dtype="float32")
        )

    def duration(self, data: bytes) -> float:
        width = 2 if self.encoding == "pcm_s16le" else 1
        return len(data) / width / self.sample_rate

    def decode(self, data: bytes) -> np.ndarray:
        if self.encoding == "pcm_s16le":
            if len(data) % 2:
                raise InvalidAudio(f"a pcm_s16le frame must hold whole 16-bit samples; got {len(data)} bytes")
            samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        else:
            samples = MULAW[np.frombuffer(data, dtype=np.uint8)]
        if self._resampler is None:
            return samples
        return self._resampler.resample_chunk(samples)
