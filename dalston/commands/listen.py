"""`dalston listen`: live transcription from the microphone, or from a file at real-time pace."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from dalston import terminal
from dalston.client import Exit, connect
from dalston.commands import options


def listen(
    file: Annotated[
        Path | None,
        typer.Option("--file", exists=True, dir_okay=False, readable=True, help="stream this file at real-time pace instead"),
    ] = None,
    device: Annotated[str | None, typer.Option("--device", "-d", help="input device index or name (sounddevice)")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="model name, or fast / accurate")] = None,
    language: Annotated[str | None, typer.Option("--language", "-l", help="ISO 639-1 code")] = None,
    enhance: Annotated[
        bool, typer.Option("--enhance", help="hybrid mode: when the session ends, a batch job re-transcribes the recording")
    ] = False,
    diarize: Annotated[bool, typer.Option("--diarize", help="with --enhance: label speakers in the batch transcript")] = False,
    json_: Annotated[bool, typer.Option("--json", help="print each final as the server's JSON message")] = False,
    server: options.Server = None,
    api_key: options.ApiKey = None,
) -> None:
    """Live transcription from the microphone (or --file): partials redrawn in place, finals printed."""
    if diarize and not enhance:
        raise typer.BadParameter("--diarize applies to the enhancement job: add --enhance", param_hint="--diarize")
    from dalston import stream

    source: stream.AudioSource = stream.FileSource(file) if file is not None else stream.MicrophoneSource(device)
    with connect(server, api_key) as api, stream.Display(json_) as display:
        try:
            end = asyncio.run(stream.session(api, source, stream.query(model, language, source, enhance, diarize), display))
        except asyncio.CancelledError:
            raise typer.Exit(Exit.INTERRUPTED) from None
    stats = end.stats
    terminal.note(f"session {end.session_id}: {stats.audio_seconds:.1f}s of audio, {stats.finals} finals")
    if end.enhancement_job_id:
        terminal.note(f"enhancement job {end.enhancement_job_id}: `dalston jobs show {end.enhancement_job_id}`")
    elif end.enhancement_error:
        terminal.note(f"no enhancement job: {end.enhancement_error}")
    sys.stdout.flush()
