"""Audio probing and decoding (PyAV) and resampling (soxr), shared by gateway and engines."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soxr

TARGET_RATE = 16_000


class AudioError(ValueError):
    """The input is not audio we can decode. The message is safe to show to users."""


@dataclass(frozen=True)
class AudioInfo:
    duration: float
    channels: int
    sample_rate: int
    format: str
    codec: str


def _open(path: Path):
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise AudioError("the file is not a recognised audio container") from exc
    if not container.streams.audio:
        container.close()
        raise AudioError("the file contains no audio stream")
    # A stream whose codec FFmpeg has no decoder for (e.g. a WAV with an unknown format
    # tag or 0 bits per sample) has no codec context at all.
    if container.streams.audio[0].codec_context is None:
        container.close()
        raise AudioError("the audio stream's codec is not supported")
    return container


def probe(path: Path, *, max_duration: float | None = None) -> AudioInfo:
    """Read duration, channels and rate, and prove the stream decodes.

    Container headers can lie (truncated files, streamed ogg/webm without duration), so the
    audio is decoded to count real samples; decoding stops early once `max_duration` is passed.
    """
    if path.stat().st_size == 0:
        raise AudioError("the file is empty")
    container = _open(path)
    try:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        channels = stream.codec_context.channels
        samples = 0
        try:
            for frame in container.decode(stream):
                samples += frame.samples
                if max_duration is not None and rate and samples / rate > max_duration:
                    break
        except (av.FFmpegError, ValueError) as exc:
            if samples == 0:
                raise AudioError("the audio stream could not be decoded") from exc
            # A damaged tail after good audio: keep what decodes, as players do.
        if samples == 0 or not rate:
            raise AudioError("the file contains no decodable audio")
        return AudioInfo(
            duration=samples / rate,
            channels=int(channels or 1),
            sample_rate=int(rate),
            format=container.format.name,
            codec=stream.codec_context.name,
        )
    finally:
        container.close()


def decode(path: Path, *, target_rate: int = TARGET_RATE) -> tuple[np.ndarray, int]:
    """Decode any container to float32 `(samples, channels)` at `target_rate`.

    Returns the audio and the source sample rate. Resampling streams through soxr so
    memory stays proportional to the output, not the decoded source.
    """
    container = _open(path)
    try:
        stream = container.streams.audio[0]
        src_rate = int(stream.codec_context.sample_rate or stream.rate)
        channels = int(stream.codec_context.channels or 1)
        # Normalise every codec's sample format to packed float32 at the source rate.
        to_float = av.AudioResampler(format="flt", layout=stream.codec_context.layout, rate=src_rate)
        resampler = soxr.ResampleStream(src_rate, target_rate, channels, dtype="float32", quality="HQ")
        chunks: list[np.ndarray] = []

        def feed(frames, last: bool = False) -> None:
            for f in frames:
                # Float codecs can carry NaN/inf, which would poison every model downstream.
                pcm = np.nan_to_num(f.to_ndarray().reshape(-1, channels), nan=0.0, posinf=1.0, neginf=-1.0)
                chunks.append(resampler.resample_chunk(pcm))
            if last:
                chunks.append(resampler.resample_chunk(np.zeros((0, channels), dtype=np.float32), last=True))

        try:
            for frame in container.decode(stream):
                feed(to_float.resample(frame))
        except (av.FFmpegError, ValueError):
            if not chunks:
                raise AudioError("the audio stream could not be decoded") from None
        feed(to_float.resample(None), last=True)
    finally:
        container.close()
    audio = np.concatenate(chunks, axis=0) if chunks else np.zeros((0, channels), dtype=np.float32)
    if audio.shape[0] == 0:
        raise AudioError("the file contains no decodable audio")
    return audio, src_rate


def write_wav(path: Path, audio: np.ndarray, rate: int = TARGET_RATE) -> None:
    """Write mono or `(samples, channels)` float audio as 16-bit PCM WAV."""
    pcm = np.clip(audio, -1.0, 1.0)
    pcm = (pcm * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1 if pcm.ndim == 1 else pcm.shape[1])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Read a 16-bit PCM WAV written by `write_wav` as float32 (mono: 1-D)."""
    with wave.open(str(path), "rb") as src:
        rate = src.getframerate()
        channels = src.getnchannels()
        data = np.frombuffer(src.readframes(src.getnframes()), dtype="<i2").astype(np.float32)
    data *= 1.0 / 32768.0  # in place: long recordings make every temporary copy count
    return (data if channels == 1 else data.reshape(-1, channels)), rate
