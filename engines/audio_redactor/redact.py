"""The signal side of audio redaction: which time ranges to cover, and covering them.

Pure numpy so it is tested without storage or decoding. Audio is float `(samples, channels)`;
every channel is covered over the same ranges (an entity said on one channel of a call can
be echoed or bleed into the other).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import numpy as np

Mode = Literal["silence", "beep"]
Span = tuple[float, float]

BEEP_HZ = 1000.0
BEEP_DBFS = -12.0  # clearly audible, far from clipping, not painful on headphones
# A hard cut to silence or into a sine clicks; a few milliseconds of crossfade does not, and
# stays inside the span (whose buffer already sits outside the entity's words).
FADE_S = 0.005


def merge_spans(spans: Iterable[Span], buffer_s: float, duration: float) -> list[Span]:
    """Each span widened by `buffer_s` on both sides and clamped to [0, duration]; spans that
    then overlap or touch become one. Empty or inverted spans are dropped."""
    widened = sorted(
        (max(0.0, start - buffer_s), min(duration, end + buffer_s))
        for start, end in spans
        if end >= start  # a zero-length entity (one word without timing) still gets its buffer
    )
    merged: list[Span] = []
    for start, end in widened:
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _envelope(length: int, fade: int, fade_in: bool, fade_out: bool) -> np.ndarray:
    """1 over the span, ramping from 0 over its first/last `fade` samples where asked."""
    weight = np.ones(length, dtype=np.float32)
    fade = min(fade, length // 2)
    if fade > 0:
        ramp = (np.arange(1, fade + 1, dtype=np.float32) / (fade + 1)).astype(np.float32)
        if fade_in:
            weight[:fade] = ramp
        if fade_out:
            weight[length - fade :] = ramp[::-1]
    return weight


def apply(audio: np.ndarray, rate: int, spans: Iterable[Span], mode: Mode) -> np.ndarray:
    """A copy of `audio` with every span replaced by silence or a 1 kHz beep on all channels.

    Inside a span the original is crossfaded into the replacement over FADE_S at each edge
    (not at the file's own start or end, where there is nothing to click against); between
    the fades the original is gone entirely. Outside the spans every sample is untouched.
    """
    if mode not in ("silence", "beep"):
        raise ValueError(f"unknown redaction mode {mode!r}")
    out = np.array(audio, dtype=np.float32, copy=True)
    if out.ndim == 1:
        out = out[:, None]
    total = out.shape[0]
    fade = max(1, round(FADE_S * rate))
    amplitude = np.float32(10 ** (BEEP_DBFS / 20))
    for start_s, end_s in spans:
        start, end = max(0, round(start_s * rate)), min(total, round(end_s * rate))
        if end <= start:
            continue
        weight = _envelope(end - start, fade, fade_in=start > 0, fade_out=end < total)[:, None]
        section = out[start:end]
        if mode == "beep":
            # Phase follows absolute time, so adjacent spans would join without a jump.
            t = np.arange(start, end, dtype=np.float64) / rate
            tone = (amplitude * np.sin(2 * np.pi * BEEP_HZ * t)).astype(np.float32)[:, None]
            out[start:end] = section * (1 - weight) + tone * weight
        else:
            out[start:end] = section * (1 - weight)
    return out if audio.ndim > 1 else out[:, 0]
