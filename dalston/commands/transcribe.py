"""`dalston transcribe FILE...`: upload each file with a bytes progress bar, follow its job's
stages, then write or print the transcript in the chosen format. Files run concurrently;
Ctrl-C offers to cancel the jobs already submitted."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.prompt import Confirm
from rich.text import Text

from dalston import terminal
from dalston.client import Api, CliError, Exit, connect
from dalston.commands import exports, options
from dalston.commands.exports import Format

CONCURRENT_FILES = 4
POLL_S = 0.5
UPLOAD_TIMEOUT_S = 300.0  # the gateway probes the whole file before it answers
TERMINAL = ("completed", "failed", "cancelled")
STAGE_MARKS = {
    "completed": "[green]{} ✓[/]",
    "running": "[bold yellow]{} ⟳[/]",
    "failed": "[red]{} ✗[/]",
    "skipped": "[dim]{} –[/]",
    "ready": "[blue]{} …[/]",  # queued on its engine's stream
}


class Stopped(Exception):
    """Ctrl-C: the workers stop at their next read or poll."""


class _CountingReader(io.BufferedReader):
    """The upload's file: httpx streams multipart bodies by `read()`, so each read advances the bar."""

    def __init__(self, path: Path, on_read: Callable[[int], None], stop: threading.Event) -> None:
        super().__init__(io.FileIO(path, "r"))
        self._on_read = on_read
        self._stop = stop

    def read(self, size: int | None = -1) -> bytes:
        if self._stop.is_set():
            raise Stopped
        chunk = super().read(size)
        self._on_read(self.tell())
        return chunk


@dataclass
class Item:
    path: Path
    output: Path | None  # where the export goes; None: stdout
    task: TaskID = TaskID(0)
    job: dict[str, Any] | None = None
    error: CliError | None = None
    result: bytes | None = None
    notes: list[str] = field(default_factory=list)


class _DetailColumn(ProgressColumn):
    """Bytes and speed while uploading; the job's stages afterwards."""

    def render(self, task: Task) -> Text:
        if task.fields.get("phase") == "upload":
            speed = f" {decimal(int(task.speed))}/s" if task.speed else ""
            total = decimal(int(task.total or 0))
            return Text(f"upload {decimal(int(task.completed))}/{total}{speed}", style="cyan")
        return Text.from_markup(task.fields.get("detail", ""))


def stages_markup(job: dict[str, Any]) -> str:
    """`job 3f0c1a2b prepare ✓ transcribe ⟳ merge` from a job's detail."""
    parts = [f"[dim]job {str(job['id'])[:8]}[/]"]
    stages = job.get("stages") or []
    if not stages:
        parts.append(escape(str(job["status"])))
    for stage in stages:
        mark = STAGE_MARKS.get(stage["status"], "[dim]{}[/]")
        parts.append(mark.format(escape(stage["name"])))
    if job["status"] in ("failed", "cancelled"):
        parts.append(f"[red]{escape(job['status'])}[/]")
    return " ".join(parts)


def output_paths(files: list[Path], fmt: Format, out: Path | None) -> list[Path | None]:
    """Each file's export path under `out` (`name.srt`; `name-2.srt` when two inputs share a name)."""
    if out is None:
        return [None] * len(files)
    seen: dict[str, int] = {}
    paths: list[Path | None] = []
    for path in files:
        seen[path.stem] = seen.get(path.stem, 0) + 1
        suffix = f"-{seen[path.stem]}" if seen[path.stem] > 1 else ""
        paths.append(out / f"{path.stem}{suffix}.{fmt.value}")
    return paths


def _form(model: str | None, language: str | None, diarize: bool, per_channel: bool, speakers: int | None) -> dict[str, str]:
    fields: dict[str, str] = {}
    if model:
        fields["model"] = model
    if language:
        fields["language"] = language
    if per_channel:
        fields["speaker_detection"] = "per_channel"
    elif diarize or speakers is not None:
        fields["speaker_detection"] = "diarize"
    if speakers is not None:
        fields["num_speakers"] = str(speakers)
    return fields


class _Run:
    """One invocation: the shared client, the progress display and the stop signal."""

    def __init__(self, api: Api, progress: Progress, fields: dict[str, str], fmt: Format, wait: bool) -> None:
        self.api = api
        self.progress = progress
        self.fields = fields
        self.fmt = fmt
        self.wait = wait
        self.stop = threading.Event()

    def one(self, item: Item) -> None:
        try:
            item.job = self._upload(item)
            if self.wait:
                item.job = self._follow(item, item.job)
                self._finish(item, item.job)
        except CliError as exc:
            item.error = CliError(f"{item.path.name}: {exc.message}", exc.code)
            self.progress.update(item.task, phase="job", detail=f"[red]{escape(exc.message[:80])}[/]")
        except Stopped:
            pass

    def _upload(self, item: Item) -> dict[str, Any]:
        with _CountingReader(item.path, lambda n: self.progress.update(item.task, completed=n), self.stop) as reader:
            job: dict[str, Any] = self.api.request(
                "POST",
                "/v1/audio/transcriptions",
                files={"file": (item.path.name, reader)},
                data=self.fields,
                timeout=UPLOAD_TIMEOUT_S,
            ).json()
        self.progress.update(item.task, total=1.0, completed=0.0, phase="job", detail=stages_markup(job))
        return job

    def _follow(self, item: Item, job: dict[str, Any]) -> dict[str, Any]:
        while job["status"] not in TERMINAL:
            if self.stop.wait(POLL_S):
                raise Stopped
            job = self.api.get(f"/v1/audio/transcriptions/{job['id']}")
            item.job = job
            self.progress.update(item.task, completed=float(job.get("progress") or 0.0), detail=stages_markup(job))
        return job

    def _finish(self, item: Item, job: dict[str, Any]) -> None:
        if job["status"] != "completed":
            reason = f": {job['error']}" if job.get("error") else ""
            item.error = CliError(f"{item.path.name}: job {job['id']} {job['status']}{reason}", Exit.ERROR)
            return
        content = exports.fetch(self.api, str(job["id"]), self.fmt)
        detail = stages_markup(job)
        if item.output is not None:
            exports.write(item.output, content)
            detail += f" → {escape(item.output.name)}"  # the directory is the one --out named
        else:
            item.result = content
        item.notes += [f"{item.path.name}: warning: {w}" for w in job.get("warnings") or []]
        self.progress.update(item.task, completed=1.0, detail=detail)


def _cancel(api: Api, items: list[Item]) -> None:
    running = [i.job for i in items if i.job is not None and i.job["status"] not in TERMINAL]
    if not running:
        return
    ask = sys.stdin.isatty()
    if ask and not Confirm.ask(f"Cancel the {len(running)} submitted job(s)?", default=True, console=terminal.err):
        for job in running:
            terminal.note(f"left running: {job['id']}")
        return
    for job in running:
        try:
            api.post(f"/v1/audio/transcriptions/{job['id']}/cancel")
            terminal.note(f"cancelled {job['id']}")
        except CliError as exc:
            terminal.note(f"dalston: {job['id']}: {exc.message}")


def transcribe(
    files: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, readable=True, help="audio or video files")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="model name (GET /v1/models); default: the server's")] = None,
    language: Annotated[str | None, typer.Option("--language", "-l", help="ISO 639-1 code; default: detect")] = None,
    diarize: Annotated[bool, typer.Option("--diarize", help="label speakers by voice")] = False,
    per_channel: Annotated[bool, typer.Option("--per-channel", help="one speaker per audio channel")] = False,
    speakers: Annotated[
        int | None, typer.Option("--speakers", min=1, max=32, help="how many speakers (implies --diarize)")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="transcript format")] = Format.txt,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", file_okay=False, help="write FILE's transcript to OUT/FILE.FORMAT; default: print it"),
    ] = None,
    wait_: Annotated[bool, typer.Option("--wait/--no-wait", help="wait for the transcripts, or print job ids and exit")] = True,
    server: options.Server = None,
    api_key: options.ApiKey = None,
) -> None:
    """Transcribe files: upload, follow the jobs' stages, print or write the transcripts.

    Files run concurrently. Text formats print to stdout unless --out is given; docx and pdf go to --out (default: .).

    Ctrl-C offers to cancel the submitted jobs (without a terminal on stdin it cancels them)."""
    if diarize and per_channel:
        raise typer.BadParameter("choose --diarize or --per-channel, not both", param_hint="--diarize / --per-channel")
    if out is None and fmt in exports.BINARY and wait_:
        out = Path(".")  # a document is never printed to a terminal
    fields = _form(model, language, diarize, per_channel, speakers)
    items = [Item(path, output) for path, output in zip(files, output_paths(files, fmt, out))]
    with connect(server, api_key) as api:
        api.get("/v1/me")  # a wrong key or server fails here, before any upload
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TimeElapsedColumn(),
            _DetailColumn(),
            console=terminal.err,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        run = _Run(api, progress, fields, fmt, wait_)
        width = min(max(len(i.path.name) for i in items), 32)
        for item in items:
            size = item.path.stat().st_size or 1
            item.task = progress.add_task(escape(item.path.name[:width].ljust(width)), total=size, phase="upload")
        pool = ThreadPoolExecutor(max_workers=min(len(items), CONCURRENT_FILES), thread_name_prefix="transcribe")
        progress.start()
        try:
            futures: list[Future[None]] = [pool.submit(run.one, item) for item in items]
            while wait(futures, timeout=0.25).not_done:
                pass
        except KeyboardInterrupt:
            run.stop.set()
            progress.stop()
            pool.shutdown(wait=True, cancel_futures=True)
            _cancel(api, items)
            raise typer.Exit(Exit.INTERRUPTED) from None
        finally:
            progress.stop()
            pool.shutdown(wait=True)
    _report(items, wait_)


def _report(items: list[Item], waited: bool) -> None:
    for item in items:
        for note in item.notes:
            terminal.note(note)
    if not waited:
        for item in items:
            if item.job is not None:
                print(item.job["id"], flush=True)
    printed = [i for i in items if i.result is not None]
    for item in printed:
        if len(printed) > 1:
            print(f"==> {item.path} <==", flush=True)
        exports.emit(item.result or b"")
    failed = [i.error for i in items if i.error is not None]
    for error in failed:
        terminal.note(f"dalston: {error.message}")
    if failed:
        raise typer.Exit(failed[0].code)
