"""One realtime session: VAD segmentation, partials, finals, lag and idle limits.

Audio is cut into VAD segments (speech plus padding, ended by `endpoint_ms` of silence, a
flush, or 28 s of continuous speech: Whisper's window). Each segment is decoded once for
its final. Latency comes from decoding early: as soon as `SPECULATE_S` of silence follows
speech, the final decode of the segment starts, so by the time the endpoint (or the
client's commit) arrives the text is usually ready. If speech resumes, that speculative
decode is dropped. Partials re-decode the open segment (greedy, no timestamps) at most
every partial interval (the configured one, longer when the decoder is busy: see
`DecodeScheduler.partial_interval`), only while speech goes on, no final is waiting and the
session keeps up with its audio; a partial still queued when the next is due is replaced.

Backpressure: when more than `realtime_lag_hold_s` of received audio waits to be processed,
the session stops reading from the client (who is told once, with a `lag` warning) until the
backlog is half that; nothing is dropped, a client sending faster than real time is simply
slowed to the decoder's pace. Only a decoder that makes no progress for
`realtime_lag_max_s` while the session waits ends it (`lag_exceeded`).

With `vad=true` each segment's final is sent at its endpoint. With `vad=false` (manual
commit) segments accumulate and a flush sends them as one final; after
`max_utterance_s` of audio without a flush the session commits by itself.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError
from websockets.exceptions import ConnectionClosed

from realtime_worker import metrics
from realtime_worker.asr import SAMPLE_RATE, Decoded
from realtime_worker.audio import AudioDecoder, InvalidAudio
from realtime_worker.scheduler import FINAL, PARTIAL, DecodeScheduler
from realtime_worker.vad import FRAME, StreamingVad
from shared import safejson
from shared.realtime import protocol as p
from shared.realtime.recording import Recorder
from shared.settings import Settings

PRE_PAD_S = 0.3  # audio kept before the first speech frame
POST_PAD_S = 0.2  # audio kept after the last speech frame
# Silence after which the final is decoded speculatively. Whisper's encoder costs the same for
# any utterance (a 30 s window), so every 100 ms earlier is 100 ms less latency at the endpoint.
SPECULATE_S = 0.1
MAX_SEGMENT_S = 28.0


class ClientSocket(Protocol):
    """The client's side of the session (a websockets connection; a stub in tests)."""

    async def recv(self) -> str | bytes: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class Fatal(Exception):
    def __init__(self, code: str, message: str, close_code: int) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.close_code = close_code


@dataclass
class Piece:
    """A decoded segment, with times relative to the session start."""

    text: str
    start: float
    end: float
    words: list[p.StreamWord]
    language: str | None


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    audio_s: float = 0.0
    finals: int = 0
    partials: int = 0
    partials_shed: int = 0
    held_s: float = 0.0
    errors: int = 0
    max_lag_s: float = 0.0
    final_latency_ms: list[float] = field(default_factory=list)

    def snapshot(self) -> p.SessionStats:
        lat = sorted(self.final_latency_ms)
        return p.SessionStats(
            audio_seconds=round(self.audio_s, 3),
            session_seconds=round(time.monotonic() - self.started, 3),
            finals=self.finals,
            partials=self.partials,
            partials_shed=self.partials_shed,
            held_seconds=round(self.held_s, 3),
            errors=self.errors,
            max_lag_seconds=round(self.max_lag_s, 3),
            final_latency_ms_p50=round(lat[len(lat) // 2], 1) if lat else None,
            final_latency_ms_max=round(lat[-1], 1) if lat else None,
        )


class Session:
    def __init__(
        self,
        session_id: str,
        params: p.SessionParams,
        queue: DecodeScheduler,
        settings: Settings,
        send: Callable[[p.ServerMessage], Awaitable[None]],
        recorder: Recorder | None = None,
        partial_interval: Callable[[], float] | None = None,
    ) -> None:
        self.id = session_id
        self.recorder = recorder
        self.params = params
        self.queue = queue
        self.settings = settings
        self._send = send
        self.audio = AudioDecoder(params.encoding, params.sample_rate)
        self.vad = StreamingVad()
        self.stats = Stats()
        self.inbox: asyncio.Queue[tuple[str, Any, float]] = asyncio.Queue()
        # The partial cadence the worker allows now (it lengthens under load).
        self.partial_interval = partial_interval or (lambda: settings.realtime_partial_interval_s)
        self.received_s = 0.0
        self.processed_s = 0.0
        self._progress = asyncio.Event()  # set whenever processing consumes audio
        # Audio kept for decoding: buf[0] is absolute sample `buf_start`; `total` samples so far.
        self.buf = np.zeros(0, dtype=np.float32)
        self.buf_start = 0
        self.total = 0
        self.vad_pos = 0
        # Segmentation.
        self.seg_start: int | None = None
        self.talking = False
        self.speech_run = 0
        self.run_start = 0
        self.silence_run = 0
        self.last_speech_end = 0
        self.spec: tuple[int, int, asyncio.Future[Decoded]] | None = None
        # Utterance = what the next final will carry.
        self.utterance_id = 0
        self.pending: list[Piece] = []
        self.utterance_start = 0
        self.partial_tasks: set[asyncio.Task[None]] = set()
        self.partial_mark = 0
        self.prompt = params.prompt

    # -- plumbing ------------------------------------------------------------------------

    async def send(self, msg: p.ServerMessage) -> None:
        await self._send(msg)

    def lag_s(self) -> float:
        return self.received_s - self.processed_s

    def begin_message(self) -> p.SessionBegin:
        return p.SessionBegin(session_id=self.id, config=self.params)

    async def receive(self, ws: ClientSocket) -> None:
        """Read client frames into the inbox until `end`, a close, or a fatal limit."""
        idle = self.settings.realtime_idle_timeout_s
        while True:
            if self.lag_s() > self.settings.realtime_lag_hold_s:
                await self._hold()
            try:
                frame = await asyncio.wait_for(ws.recv(), timeout=idle)
            except TimeoutError:
                raise Fatal(p.IDLE_TIMEOUT, f"no audio for {idle:g} s; the session was closed", p.CLOSE_POLICY) from None
            now = time.monotonic()
            if isinstance(frame, bytes):
                await self._on_audio(frame, now)
            elif await self._on_text(frame, now):
                return

    async def _on_audio(self, data: bytes, now: float) -> None:
        if len(data) > self.settings.realtime_max_chunk_bytes:
            await self._soft_error(
                p.CHUNK_TOO_LARGE,
                f"audio frame of {len(data)} bytes exceeds the {self.settings.realtime_max_chunk_bytes}-byte limit; dropped",
            )
            return
        if not data:
            return
        try:
            samples = self.audio.decode(data)
        except InvalidAudio as exc:
            await self._soft_error(p.INVALID_AUDIO, f"{exc}; dropped")
            return
        if self.recorder is not None:
            # Recorded as received, not as processed: a crash keeps what was sent.
            self.recorder.append(samples)
        duration = self.audio.duration(data)
        self.received_s += duration
        self.inbox.put_nowait(("audio", (samples, duration), now))
        self.stats.max_lag_s = max(self.stats.max_lag_s, self.lag_s())

    async def _hold(self) -> None:
        """Stop reading the client until the backlog is down to half the hold bound."""
        hold, patience = self.settings.realtime_lag_hold_s, self.settings.realtime_lag_max_s
        lag = self.lag_s()
        await self.send(
            p.WarningMessage(
                code="lag",
                message=f"transcription is {lag:.1f} s behind the audio; reading paused until it catches up",
                lag_seconds=round(lag, 3),
            )
        )
        began = time.monotonic()
        try:
            while self.lag_s() > hold / 2:
                self._progress.clear()
                try:
                    await asyncio.wait_for(self._progress.wait(), timeout=patience)
                except TimeoutError:
                    raise Fatal(
                        p.LAG_EXCEEDED,
                        f"the transcriber made no progress for {patience:g} s with {self.lag_s():.1f} s of audio waiting",
                        p.CLOSE_TRY_AGAIN,
                    ) from None
        finally:
            held = time.monotonic() - began
            self.stats.held_s += held
            metrics.HELD_SECONDS.inc(held)

    async def _on_text(self, frame: str, now: float) -> bool:
        """Handle a control message; True when the client ended the session."""
        try:
            msg = safejson.loads(frame)
        except json.JSONDecodeError as exc:
            await self._soft_error(p.INVALID_JSON, f"text frames must be JSON: {exc.msg} at position {exc.pos}")
            return False
        kind = msg.get("type") if isinstance(msg, dict) else None
        if kind in ("flush", "commit"):
            self.inbox.put_nowait(("flush", None, now))
        elif kind == "end":
            self.inbox.put_nowait(("end", None, now))
            return True
        elif kind == "keepalive":
            pass
        elif kind == "config":
            try:
                update = p.ConfigUpdate.model_validate(msg)
            except ValidationError as exc:
                await self._soft_error(p.INVALID_MESSAGE, f"config: {p.first_error(exc)}")
                return False
            self.inbox.put_nowait(("config", update, now))
        else:
            await self._soft_error(
                p.INVALID_MESSAGE, f"unknown message type {kind!r}; expected config, flush, commit, end or keepalive"
            )
        return False

    async def _soft_error(self, code: str, message: str) -> None:
        self.stats.errors += 1
        await self.send(p.error(code, message))

    # -- processing ----------------------------------------------------------------------

    async def process(self) -> None:
        """Consume the inbox in order until `end`; then send the last final and the stats."""
        while True:
            kind, item, at = await self.inbox.get()
            if kind == "audio":
                samples, duration = item
                await self._consume(samples, at)
                self.processed_s += duration
                self.stats.audio_s += duration
                self._progress.set()
                self._maybe_partial(at)
            elif kind == "flush":
                await self._commit("commit", at)
            elif kind == "config":
                self._configure(item)
            elif kind == "end":
                if self.seg_start is not None or self.pending:
                    await self._commit("end", at)
                # Stored before the client hears the end: the recording is then whole.
                recording = await self.recorder.close() if self.recorder is not None else None
                await self.send(p.SessionEnd(session_id=self.id, stats=self.stats.snapshot(), recording=recording))
                return

    def _configure(self, update: p.ConfigUpdate) -> None:
        changes = update.model_dump(exclude_none=True, exclude={"type"})
        self.params = self.params.model_copy(update=changes)
        if "prompt" in changes:
            self.prompt = update.prompt

    async def _consume(self, samples: np.ndarray, at: float) -> None:
        self.buf = np.concatenate([self.buf, samples]) if self.buf.size else samples
        self.total += samples.size
        probs = self.vad.process(samples)
        for prob in probs:
            start = self.vad_pos
            self.vad_pos += FRAME
            await self._frame(float(prob), start, self.vad_pos, at)
        if self.seg_start is None:
            # Keep only the pre-roll that a next segment may start with.
            keep = int(PRE_PAD_S * SAMPLE_RATE)
            if self.buf.size > keep:
                self.buf_start += self.buf.size - keep
                self.buf = self.buf[-keep:]
        if not self.params.vad and (self.total - self.utterance_start) / SAMPLE_RATE >= self.params.max_utterance_s:
            await self._commit("max_length", at)

    async def _frame(self, prob: float, start: int, end: int, at: float) -> None:
        params = self.params
        threshold = params.vad_threshold
        is_speech = prob >= (max(threshold - 0.15, 0.05) if self.talking else threshold)
        if is_speech and self.talking:
            if self.silence_run:
                # Speech went on after a pause too short to end it: a speculation made in it is stale.
                self._drop_speculation()
            self.last_speech_end = end
            self.silence_run = 0
        elif is_speech:
            if self.speech_run == 0:
                self.run_start = start
            self.speech_run += FRAME
            if self.speech_run >= params.min_speech_ms * SAMPLE_RATE // 1000:
                self.talking = True
                self.speech_run = 0
                self.silence_run = 0
                self.last_speech_end = end
                self._drop_speculation()
                if self.seg_start is None:
                    self.seg_start = max(self.buf_start, self.run_start - int(PRE_PAD_S * SAMPLE_RATE))
                    self.partial_mark = self.total
                await self.send(p.SpeechStart(timestamp=round(self.run_start / SAMPLE_RATE, 3)))
        else:
            self.speech_run = 0
        if self.seg_start is None:
            return
        if not (is_speech and self.talking):
            self.silence_run += FRAME
            if self.talking and self.silence_run >= params.min_silence_ms * SAMPLE_RATE // 1000:
                self.talking = False
                await self.send(p.SpeechEnd(timestamp=round(self.last_speech_end / SAMPLE_RATE, 3)))
            pad = int(POST_PAD_S * SAMPLE_RATE)
            if self.spec is None and self.silence_run >= SPECULATE_S * SAMPLE_RATE:
                span = (self.seg_start, self.last_speech_end + min(pad, self.silence_run))
                # Due when the endpoint would be reached, if the pause lasts.
                due_in = max(0, params.endpoint_ms * SAMPLE_RATE // 1000 - self.silence_run) / SAMPLE_RATE
                self.spec = (*span, self._submit_final(*span, due_in=due_in))
            if self.silence_run >= params.endpoint_ms * SAMPLE_RATE // 1000:
                piece = await self._close_segment(self.last_speech_end + pad)
                if params.vad:
                    await self._emit_final([piece], "vad", at)
                else:
                    self.pending.append(piece)
                return
        if end - self.seg_start >= MAX_SEGMENT_S * SAMPLE_RATE:
            piece = await self._close_segment(end)
            if params.vad:
                await self._emit_final([piece], "max_length", at)
            else:
                self.pending.append(piece)

    def _submit_final(self, start: int, end: int, due_in: float = 0.0) -> asyncio.Future[Decoded]:
        audio = self.buf[start - self.buf_start : end - self.buf_start].copy()
        return self.queue.submit(
            FINAL,
            audio,
            deadline=self.queue.clock() + due_in,
            session=self.id,
            words=self.params.word_timestamps,
            language=self.params.language,
            prompt=self.prompt,
        )

    def _drop_speculation(self) -> None:
        if self.spec is not None:
            self.spec[2].cancel()
            self.spec = None

    async def _close_segment(self, end: int) -> Piece:
        assert self.seg_start is not None
        start, end = self.seg_start, min(end, self.total)
        # Speech resuming drops the speculation, so a standing one covers all of the segment's speech.
        if self.spec is not None and self.spec[0] == start and self.spec[1] <= end:
            future = self.spec[2]
        else:
            self._drop_speculation()
            future = self._submit_final(start, end)
        self.spec = None
        self.seg_start = None
        self.silence_run = 0
        if self.talking:
            self.talking = False
            await self.send(p.SpeechEnd(timestamp=round(end / SAMPLE_RATE, 3)))
        decoded = await future
        offset = start / SAMPLE_RATE
        words = [
            p.StreamWord(word=w.text, start=round(offset + w.start, 3), end=round(offset + w.end, 3), probability=w.probability)
            for w in decoded.words
        ]
        return Piece(decoded.text, round(offset, 3), round(end / SAMPLE_RATE, 3), words, decoded.language)

    async def _commit(self, reason: p.FinalReason, at: float) -> None:
        if self.seg_start is not None:
            pad = int(POST_PAD_S * SAMPLE_RATE)
            # Trailing silence is not part of the utterance; speech still going on is.
            end = self.last_speech_end + pad if not self.talking and self.silence_run >= pad else self.total
            self.pending.append(await self._close_segment(end))
        await self._emit_final(self.pending, reason, at, always=True)
        self.pending = []

    async def _emit_final(self, pieces: list[Piece], reason: p.FinalReason, at: float, *, always: bool = False) -> None:
        text = " ".join(piece.text for piece in pieces if piece.text)
        self.utterance_start = self.total
        if not text and not always:
            return
        latency_ms = (time.monotonic() - at) * 1000
        self.stats.final_latency_ms.append(latency_ms)
        metrics.FINAL_LATENCY.observe(latency_ms / 1000)
        self.stats.finals += 1
        msg = p.TranscriptFinal(
            utterance_id=self.utterance_id,
            text=text,
            start=pieces[0].start if pieces else round(self.total / SAMPLE_RATE, 3),
            end=pieces[-1].end if pieces else round(self.total / SAMPLE_RATE, 3),
            language=next((piece.language for piece in pieces if piece.language), self.params.language),
            reason=reason,
            latency_ms=round(latency_ms, 1),
            words=[w for piece in pieces for w in piece.words] if self.params.word_timestamps else None,
        )
        self.utterance_id += 1
        if self.recorder is not None:
            self.recorder.add_final(msg)
        await self.send(msg)

    def _maybe_partial(self, at: float) -> None:
        if (
            not self.params.interim_results
            or self.seg_start is None
            # In a pause the text cannot change, and the final's decode needs the CPU:
            # from the first silent frame on, leave the decoder free for it.
            or not self.talking
            or self.silence_run > 0
            or self.total - self.partial_mark < self.partial_interval() * SAMPLE_RATE
        ):
            return
        self.partial_mark = self.total
        # Behind the audio, or a final waiting: the CPU goes to catching up, not to previews.
        shed = "lag" if self.lag_s() > 1.0 else "final_waiting" if self.queue.pending_finals else None
        if shed is not None:
            self.stats.partials_shed += 1
            metrics.PARTIALS_SHED.labels(shed).inc()
            return
        audio = self.buf[self.seg_start - self.buf_start :].copy()
        task = asyncio.create_task(self._partial(audio, self.utterance_id, self.seg_start, at))
        self.partial_tasks.add(task)
        task.add_done_callback(self.partial_tasks.discard)

    async def _partial(self, audio: np.ndarray, utterance_id: int, seg_start: int, at: float) -> None:
        future = self.queue.submit(
            PARTIAL,
            audio,
            deadline=self.queue.clock() + self.partial_interval(),
            session=self.id,
            words=False,
            language=self.params.language,
            prompt=self.prompt,
        )
        try:
            decoded = await future
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                return  # replaced in the queue by this session's newer partial
            future.cancel()
            raise
        if self.utterance_id != utterance_id or self.seg_start != seg_start:
            return  # a final overtook this preview
        text = " ".join(t for t in [*(piece.text for piece in self.pending), decoded.text] if t)
        if not text:
            return
        self.stats.partials += 1
        metrics.PARTIAL_LATENCY.observe(time.monotonic() - at)
        start = self.pending[0].start if self.pending else round(seg_start / SAMPLE_RATE, 3)
        await self.send(
            p.TranscriptPartial(
                utterance_id=utterance_id, text=text, start=start, end=round((seg_start + audio.size) / SAMPLE_RATE, 3)
            )
        )

    def cancel(self) -> None:
        self._drop_speculation()
        for task in list(self.partial_tasks):
            task.cancel()


async def run(session: Session, ws: ClientSocket) -> None:
    """Drive a session on an open socket and close it with the right code."""
    await session.send(session.begin_message())
    receiver = asyncio.create_task(session.receive(ws))
    processor = asyncio.create_task(session.process())
    close_code, reason = p.CLOSE_NORMAL, "session ended"
    try:
        done, _ = await asyncio.wait({receiver, processor}, return_when=asyncio.FIRST_COMPLETED)
        if receiver in done and receiver.exception() is None:
            # The client sent `end`: finish the queued audio first.
            await asyncio.wait({processor})
            done = {processor}
        exc = next(iter(done)).exception()
        if isinstance(exc, ConnectionClosed):
            return  # the client left; nobody to tell
        if isinstance(exc, Fatal):
            raise exc
        if exc is not None:
            raise Fatal(p.TRANSCRIBER_ERROR, f"transcription failed: {type(exc).__name__}: {exc}", p.CLOSE_INTERNAL) from exc
    except Fatal as fatal:
        close_code, reason = fatal.close_code, fatal.code
        try:
            await session.send(p.error(fatal.code, fatal.message, fatal=True))
        except ConnectionClosed:
            return
    except ConnectionClosed:
        return
    finally:
        for task in (receiver, processor):
            task.cancel()
        session.cancel()
    await ws.close(close_code, reason)
