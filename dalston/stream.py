"""Audio into the native realtime WebSocket (`WS /v1/audio/transcriptions/stream`) and what comes
back onto the terminal, for `dalston listen`: the open utterance's partial redrawn in place,
finals scrolled. Ctrl-C ends the session cleanly (the last utterance is finalised); a second
Ctrl-C quits at once. Kept apart from the command so that other commands start without numpy."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import ValidationError
from rich.console import Console
from rich.live import Live
from rich.text import Text
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from dalston import terminal
from dalston.client import Api, CliError, Exit, api_error
from shared.realtime import protocol as p

RATE = 16_000
CHUNK_S = 0.1
END_TIMEOUT_S = 120.0  # after `end`: the worker finishes the audio it holds
AUTH_CODES = {p.UNAUTHORIZED: Exit.AUTH, p.FORBIDDEN: Exit.AUTH}


class AudioSource(Protocol):
    sample_rate: int

    def chunks(self, stop: asyncio.Event) -> AsyncIterator[bytes]: ...


class FileSource:
    """A file decoded to 16 kHz mono PCM16, sent in 100 ms chunks on the clock of its own audio."""

    sample_rate = RATE

    def __init__(self, path: Path) -> None:
        from shared.audio import AudioError, decode

        try:
            audio, _ = decode(path, target_rate=RATE)
        except AudioError as exc:
            raise CliError(f"cannot read {path}: {exc}", Exit.USAGE) from exc
        mono = audio.mean(axis=1) if audio.ndim > 1 else audio
        self.pcm = (np.clip(mono, -1.0, 1.0) * 32767).astype("<i2").tobytes()

    async def chunks(self, stop: asyncio.Event) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        size = int(RATE * CHUNK_S) * 2
        start = loop.time()
        for index, offset in enumerate(range(0, len(self.pcm), size)):
            delay = start + index * CHUNK_S - loop.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return
            yield self.pcm[offset : offset + size]


class MicrophoneSource:
    """The input device through PortAudio (the optional `sounddevice` package), at its own rate."""

    def __init__(self, device: str | None) -> None:
        self.sd = _sounddevice()
        self.device: int | str | None = int(device) if device is not None and device.isdigit() else device
        try:
            info = self.sd.query_devices(self.device, "input")
            self.sample_rate = int(info["default_samplerate"])
            self.sd.check_input_settings(device=self.device, samplerate=self.sample_rate, channels=1, dtype="int16")
        except (ValueError, self.sd.PortAudioError) as exc:
            raise CliError(f"no usable input device {device or '(default)'}: {exc}", Exit.USAGE) from exc

    async def chunks(self, stop: asyncio.Event) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        def callback(data: Any, _frames: int, _time: Any, _status: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, bytes(data))

        blocksize = int(self.sample_rate * CHUNK_S)
        stream = self.sd.RawInputStream(
            samplerate=self.sample_rate, channels=1, dtype="int16", blocksize=blocksize, device=self.device, callback=callback
        )
        with stream:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    yield await asyncio.wait_for(queue.get(), 0.2)


def _sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError:
        raise CliError(
            "listening to a microphone needs the sounddevice package: pip install 'dalston[mic]' (or stream a file with --file)",
            Exit.ERROR,
        ) from None
    except OSError as exc:  # the package is there, the PortAudio library is not
        raise CliError(
            f"sounddevice cannot load PortAudio ({exc}): install it, e.g. apt install libportaudio2", Exit.ERROR
        ) from None
    return sounddevice


class Display:
    """Finals on stdout; the open utterance's partial redrawn in place on whichever of
    stdout/stderr is a terminal (nowhere when neither is)."""

    def __init__(self, json_lines: bool) -> None:
        self.json_lines = json_lines
        console: Console | None = terminal.out if terminal.out.is_terminal else terminal.err if terminal.err.is_terminal else None
        self.live = Live(console=console, transient=True, auto_refresh=False) if console is not None else None
        self.same_screen = console is terminal.out

    def __enter__(self) -> Display:
        if self.live is not None:
            self.live.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.live is not None:
            self.live.stop()

    def partial(self, text: str) -> None:
        if self.live is not None:
            # Marked as well as styled: a partial must read as provisional without colours too.
            self.live.update(Text("… " + text.strip(), style="italic bright_black"), refresh=True)

    def final(self, message: p.TranscriptFinal, raw: str) -> None:
        if self.live is not None:
            self.live.update(Text(""), refresh=True)
        if self.json_lines:
            line = raw
        elif message.text.strip():
            line = message.text.strip()
        else:
            return
        if self.live is not None and self.same_screen:
            self.live.console.print(line, markup=False, highlight=False)  # word-wrapped, on a terminal
        else:
            print(line, flush=True)

    def note(self, message: str) -> None:
        if self.live is not None:
            self.live.console.print(message, markup=False, highlight=False, style="dim")
        else:
            terminal.note(message)


def query(model: str | None, language: str | None, source: AudioSource, enhance: bool, diarize: bool) -> dict[str, str]:
    """The session's query parameters (README "Native" and "Hybrid mode")."""
    params = {"encoding": "pcm_s16le", "sample_rate": str(source.sample_rate)}
    if model:
        params["model"] = model
    if language:
        params["language"] = language
    if enhance:
        params["enhance_on_end"] = "true"
        if diarize:
            params["speaker_detection"] = "diarize"
    return params


async def _send(ws: ClientConnection, source: AudioSource, stop: asyncio.Event) -> None:
    async for chunk in source.chunks(stop):
        await ws.send(chunk)
    await ws.send(json.dumps({"type": "end"}))


async def _messages(ws: ClientConnection) -> AsyncIterator[str | bytes]:
    """Every message until the close, however the close came."""
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            yield raw


async def _receive(ws: ClientConnection, display: Display) -> p.SessionEnd:
    fatal: p.ErrorMessage | None = None
    async for raw in _messages(ws):
        try:
            message = p.parse_server_message(raw)
        except ValidationError:
            continue  # a message type this client does not know yet
        if isinstance(message, p.TranscriptPartial):
            display.partial(message.text)
        elif isinstance(message, p.TranscriptFinal):
            display.final(message, raw if isinstance(raw, str) else raw.decode())
        elif isinstance(message, p.SessionBegin):
            display.note(f"session {message.session_id} ({message.config.model or 'default model'}); Ctrl-C ends it")
        elif isinstance(message, p.WarningMessage):
            display.note(f"warning: {message.message}")
        elif isinstance(message, p.ErrorMessage):
            if message.fatal:
                fatal = message
            else:
                display.note(f"error: {message.message} ({message.code})")
        elif isinstance(message, p.SessionEnd):
            return message
    if fatal is not None:
        hint = f"; enhancement job {fatal.enhancement_job_id}" if fatal.enhancement_job_id else ""
        raise CliError(f"{fatal.message} ({fatal.code}){hint}", AUTH_CODES.get(fatal.code, Exit.ERROR))
    raise CliError(f"the server closed the session ({ws.close_code} {ws.close_reason or ''})", Exit.ERROR)


async def session(api: Api, source: AudioSource, params: dict[str, str], display: Display) -> p.SessionEnd:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_interrupt() -> None:
        if stop.is_set():
            if main is not None:
                main.cancel()  # a second Ctrl-C: quit now
            return
        stop.set()
        display.note("ending the session (Ctrl-C again to quit at once)")

    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    url = api.ws_url("/v1/audio/transcriptions/stream", params)
    try:
        async with ws_connect(url, additional_headers=api.auth_headers(), max_size=2**24, open_timeout=10) as ws:
            sender = asyncio.create_task(_send(ws, source, stop))
            receiver = asyncio.create_task(_receive(ws, display))
            try:
                await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
                if receiver.done():
                    return receiver.result()
                error = sender.exception()
                if error is not None and not isinstance(error, ConnectionClosed):
                    raise error  # the audio source failed; a closed socket is the receiver's to explain
                try:
                    return await asyncio.wait_for(receiver, END_TIMEOUT_S)
                except TimeoutError:
                    raise CliError(f"the session did not end within {END_TIMEOUT_S:.0f}s of the last audio") from None
            finally:
                for task in (sender, receiver):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                        await task
    except InvalidStatus as exc:
        raise api_error(exc.response.status_code, bytes(exc.response.body or b""), target=api.target) from exc
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise CliError(
            f"cannot reach the realtime endpoint at {api.target.server} ({exc or type(exc).__name__}); is the server running?",
            Exit.UNREACHABLE,
        ) from exc
    finally:
        loop.remove_signal_handler(signal.SIGINT)
