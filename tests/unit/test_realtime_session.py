"""A realtime session without a network: segmentation and decoding with the bundled
tiny.en, and the idle and backpressure limits."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import jiwer
import numpy as np
import pytest
import soxr
from support import FIXTURES, until

from realtime_worker.asr import PARTIAL_CONTEXT_PAD_S, FasterWhisperBackend
from realtime_worker.scheduler import DecodeScheduler
from realtime_worker.session import Fatal, Session
from realtime_worker.vad import StreamingVad
from shared.audio import read_wav
from shared.realtime import protocol as p
from shared.settings import Settings


def wer(reference_file: str, hypothesis: str) -> float:
    words = lambda text: " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())  # noqa: E731
    return jiwer.wer(words((FIXTURES / reference_file).read_text()), words(hypothesis))


def pcm16(name: str, silence_s: float = 0.0) -> bytes:
    audio, rate = read_wav(FIXTURES / name)
    audio = soxr.resample(audio, rate, 16000)
    audio = np.concatenate([audio, np.zeros(int(silence_s * 16000), dtype=audio.dtype)])
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


class Socket:
    """What `Session.receive` reads from: queued frames, then silence (no frames at all)."""

    def __init__(self, frames: list[str | bytes], every_s: float = 0.0) -> None:
        self.frames = list(frames)
        self.every_s = every_s

    async def recv(self) -> str | bytes:
        if not self.frames:
            await asyncio.Event().wait()
        await asyncio.sleep(self.every_s)
        return self.frames.pop(0)


@pytest.fixture(scope="module")
def backend() -> FasterWhisperBackend:
    return FasterWhisperBackend("tiny.en", Settings(whisper_cpu_threads=2))


def session(queue: DecodeScheduler | None, sent: list[dict[str, Any]], **settings: Any) -> Session:
    async def send(msg: p.ServerMessage) -> None:
        sent.append(msg.model_dump(mode="json"))  # as the client reads it

    params = p.SessionParams(word_timestamps=True, language="en", endpoint_ms=500)
    return Session("s1", params, queue, Settings(**settings), send)  # type: ignore[arg-type]


def test_vad_finds_the_speech_in_a_fixture() -> None:
    audio, rate = read_wav(FIXTURES / "short_en.wav")
    audio = soxr.resample(audio, rate, 16000).astype(np.float32)
    vad = StreamingVad()
    probs = np.concatenate([vad.process(audio[i : i + 1234]) for i in range(0, audio.size, 1234)])
    padded = np.concatenate([audio, np.zeros(16000, dtype=np.float32)])
    assert probs.size == audio.size // 512
    assert probs.max() > 0.9 and probs[:2].max() < 0.5
    tail = StreamingVad().process(padded)[-20:]
    assert tail.max() < 0.2, "a second of silence is not speech"


async def test_vad_endpoint_emits_final_with_session_relative_words(backend: FasterWhisperBackend) -> None:
    queue = DecodeScheduler(backend)
    queue.start()
    sent: list[dict[str, Any]] = []
    s = session(queue, sent, realtime_lag_hold_s=60, realtime_lag_max_s=120)  # audio arrives all at once
    # 0.5 s of silence first: word times must count from the session start, not the utterance.
    audio = b"\0\0" * 8000 + pcm16("short_en.wav", silence_s=1.0)
    for i in range(0, len(audio), 3200):
        await s._on_audio(audio[i : i + 3200], 0.0)
    await s._on_text(json.dumps({"type": "end"}), 0.0)
    await asyncio.wait_for(s.process(), 120)
    await queue.close()
    kinds = [m["type"] for m in sent]
    assert kinds[0] == p.SPEECH_START and p.SPEECH_END in kinds and kinds[-1] == p.SESSION_END
    finals = [m for m in sent if m["type"] == p.FINAL]
    assert len(finals) == 1 and finals[0]["reason"] == "vad"
    assert wer("short_en.txt", finals[0]["text"]) <= 0.35, finals[0]
    words = finals[0]["words"]
    assert words[0]["start"] >= 0.4 and words[-1]["end"] <= 3.4
    # The end-of-session flush has nothing left to send: no second final.
    assert sent[-1]["stats"]["finals"] == 1


async def test_idle_session_times_out_and_keepalives_count() -> None:
    s = session(None, [], realtime_idle_timeout_s=0.3)
    with pytest.raises(Fatal) as info:
        await asyncio.wait_for(s.receive(Socket([])), 5)
    assert info.value.code == p.IDLE_TIMEOUT and info.value.close_code == p.CLOSE_POLICY
    keepalives = [json.dumps({"type": "keepalive"})] * 5 + [b"\0\0" * 1600] * 3
    s = session(None, [], realtime_idle_timeout_s=0.5)
    socket = Socket(keepalives, every_s=0.2)
    with pytest.raises(Fatal) as info:
        await asyncio.wait_for(s.receive(socket), 10)
    # Each frame comes after 0.2 s, well under the 0.5 s timeout: only a timer that every
    # keepalive and audio frame resets lets the session read all eight before it idles out.
    assert info.value.code == p.IDLE_TIMEOUT and socket.frames == []


async def test_backpressure_holds_a_fast_client_without_losing_audio() -> None:
    sent: list[dict[str, Any]] = []
    s = session(None, sent, realtime_lag_hold_s=1.0, realtime_lag_max_s=30)
    tenth = b"\0\0" * 1600
    socket = Socket([tenth] * 40 + [json.dumps({"type": "end"})])  # 4 s of audio at once
    receiver = asyncio.create_task(s.receive(socket))
    await until(lambda: s.received_s > 1.0, "the session read past the hold bound")
    await asyncio.sleep(0.2)  # room to read on, were the hold not holding
    # Nothing is processed yet: reading stopped just past the hold bound, with one warning.
    assert 1.0 < s.received_s <= 1.1 + 1e-9 and len(socket.frames) > 25
    assert [m["code"] for m in sent if m["type"] == p.WARNING] == ["lag"]
    assert not receiver.done()
    # Silence needs no decoder: processing drains the backlog and reading resumes.
    await asyncio.wait_for(asyncio.gather(receiver, s.process()), 30)
    assert s.stats.audio_s == pytest.approx(4.0) and s.received_s == pytest.approx(4.0)
    assert s.stats.held_s > 0.1 and sent[-1]["type"] == p.SESSION_END  # held through the 0.2 s above


async def test_a_stalled_decoder_ends_a_held_session() -> None:
    s = session(None, [], realtime_lag_hold_s=0.5, realtime_lag_max_s=0.5)
    socket = Socket([b"\0\0" * 1600] * 20)
    with pytest.raises(Fatal) as info:
        await asyncio.wait_for(s.receive(socket), 10)  # nothing processes the audio
    assert info.value.code == p.LAG_EXCEEDED and info.value.close_code == p.CLOSE_TRY_AGAIN
    assert "no progress for 0.5 s" in info.value.message


async def test_manual_mode_commits_by_itself_after_max_utterance(backend: FasterWhisperBackend) -> None:
    queue = DecodeScheduler(backend)
    queue.start()
    sent: list[dict[str, Any]] = []

    async def send(msg: p.ServerMessage) -> None:
        sent.append(msg.model_dump(mode="json"))

    params = p.SessionParams(vad=False, language="en", max_utterance_s=5.0)
    settings = Settings(realtime_lag_hold_s=60, realtime_lag_max_s=120)
    s = Session("s2", params, queue, settings, send)
    audio = pcm16("speech_en.wav")[: 16000 * 2 * 6]  # 6 s of speech, never flushed
    for i in range(0, len(audio), 3200):
        await s._on_audio(audio[i : i + 3200], 0.0)
    s.inbox.put_nowait(("end", None, 0.0))
    await asyncio.wait_for(s.process(), 120)
    await queue.close()
    finals = [m for m in sent if m["type"] == p.FINAL]
    assert finals[0]["reason"] == "max_length" and "lazy dog" in finals[0]["text"].lower(), finals
    assert finals[0]["end"] == pytest.approx(5.0, abs=0.2)


async def test_parakeet_backend_transcribes_when_weights_are_configured() -> None:
    settings = Settings()
    name = next(iter(settings.parakeet_models), None)
    if name is None:
        pytest.skip("no Parakeet weights configured (DALSTON_PARAKEET_MODELS) on this machine")
    from realtime_worker.asr import BackendUnavailable, ParakeetBackend

    try:
        backend = ParakeetBackend(name, settings)
    except BackendUnavailable as exc:
        pytest.skip(str(exc))
    audio, rate = read_wav(FIXTURES / "short_en.wav")
    decoded = backend.decode(
        soxr.resample(audio, rate, 16000).astype(np.float32), final=True, words=True, language="en", prompt=None
    )
    assert wer("short_en.txt", decoded.text) <= 0.35 and decoded.words


def test_partials_encode_a_short_window_and_finals_the_whole_one(backend: FasterWhisperBackend) -> None:
    audio, rate = read_wav(FIXTURES / "speech_en.wav")
    three_s = soxr.resample(audio, rate, 16000).astype(np.float32)[: 3 * 16000]
    widths: list[int] = []
    encode = backend.model.encode

    def recording(features: np.ndarray) -> object:
        result = encode(features)
        widths.append(int(result.shape[1]) * 2)  # the encoder halves the frames
        return result

    backend.model.encode = recording  # type: ignore[method-assign]
    try:
        partial = backend.decode(three_s, final=False, words=False, language="en", prompt=None)
        final = backend.decode(three_s, final=True, words=True, language="en", prompt=None)
        backend.partial_pad_s = None
        whole = backend.decode(three_s, final=False, words=False, language="en", prompt=None)
    finally:
        del backend.model.encode
        backend.partial_pad_s = PARTIAL_CONTEXT_PAD_S
    # 3 s of audio + PARTIAL_CONTEXT_PAD_S (8 s) of padding, at 100 frames a second; the final
    # sees Whisper's whole 30 s window, as does a partial without a pad; the window is reset
    # after each decode.
    assert widths == [1100, 3000, 3000] and backend.model.window_frames is None
    # The short window reads as the whole one does (greedy tiny.en hears "round-fark" for
    # "brown fox" either way; the beam-searched final gets it right).
    assert partial.text == whole.text and "lazy dog" in partial.text, (partial, whole)
    assert "quick brown fox" in final.text.lower() and final.words, final
