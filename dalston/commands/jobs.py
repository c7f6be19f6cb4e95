"""`dalston jobs ls|show|cancel|rm|export`: the batch jobs of the key's tenant."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dalston import terminal
from dalston.client import CliError, Exit, connect
from dalston.commands import exports, options
from dalston.commands.exports import Format

app = typer.Typer(help="Batch jobs: list, inspect, cancel, delete, export.")
JobIds = Annotated[list[str], typer.Argument(help="job ids", show_default=False)]
JobId = Annotated[str, typer.Argument(help="job id", show_default=False)]


def _path(job_id: str) -> str:
    return f"/v1/audio/transcriptions/{job_id}"


@app.callback(invoke_without_command=True)
def _default(ctx: typer.Context) -> None:
    """Without a subcommand: `ls`."""
    if ctx.invoked_subcommand is None:
        list_jobs(status=None, name=None, limit=20, json_=False, server=None, api_key=None)


@app.command("ls")
def list_jobs(
    status: Annotated[str | None, typer.Option(help="pending, running, completed, failed or cancelled")] = None,
    name: Annotated[str | None, typer.Option("--name", help="part of the uploaded file's name")] = None,
    limit: options.Limit = 20,
    json_: options.Json = False,
    server: options.Server = None,
    api_key: options.ApiKey = None,
) -> None:
    """The newest jobs."""
    with connect(server, api_key) as api:
        page = api.get("/v1/audio/transcriptions", limit=limit, status=status, q=name)
    if json_:
        terminal.print_json(page)
        return
    terminal.table(
        ["ID", "STATUS", "FILE", "AUDIO", "MODEL", "CREATED"],
        (
            [
                str(j["id"]),
                j["status"],
                terminal.text(j["audio"].get("filename")),
                terminal.seconds(j["audio"].get("duration")),
                j["model"],
                terminal.when(j["created_at"]),
            ]
            for j in page["jobs"]
        ),
        empty="no jobs",
    )


@app.command("show")
def show(job_id: JobId, json_: options.Json = False, server: options.Server = None, api_key: options.ApiKey = None) -> None:
    """A job's status, stages and transcript text."""
    with connect(server, api_key) as api:
        job = api.get(_path(job_id))
    if json_:
        terminal.print_json(job)
        return
    _print_job(job)


def _print_job(job: dict[str, Any]) -> None:
    audio = job["audio"]
    lines = [
        ("job", str(job["id"])),
        ("status", f"{job['status']} ({job['progress']:.0%})"),
        (
            "file",
            f"{terminal.text(audio.get('filename'))}, {terminal.seconds(audio.get('duration'))}, {audio.get('channels')} ch",
        ),
        ("model", job["model"]),
        ("language", terminal.text(job.get("language"))),
        ("speakers", job["speaker_detection"]),
        ("created", terminal.when(job["created_at"])),
        ("completed", terminal.when(job.get("completed_at"))),
    ]
    if job.get("error"):
        lines.append(("error", job["error"]))
    for warning in job.get("warnings") or []:
        lines.append(("warning", warning))
    terminal.pairs(lines)
    if job.get("stages"):
        terminal.out.print()
        terminal.table(
            ["STAGE", "ENGINE", "STATUS", "ATTEMPT", "TIME"],
            (
                [
                    s["name"],
                    s["engine_id"],
                    s["status"],
                    str(s["attempt"]),
                    "-" if s.get("duration_ms") is None else f"{s['duration_ms'] / 1000:.1f}s",
                ]
                for s in job["stages"]
            ),
        )
    transcript = job.get("transcript")
    if transcript:
        terminal.out.print()
        terminal.out.print(job.get("redacted_text") or transcript["text"], markup=False, soft_wrap=True)


def _each(job_ids: list[str], server: str | None, api_key: str | None, method: str, suffix: str, done: str) -> None:
    """Apply one request to every id; report each; the first failure's exit code at the end."""
    failures: list[CliError] = []
    with connect(server, api_key) as api:
        for job_id in job_ids:
            try:
                api.request(method, _path(job_id) + suffix)
                print(f"{done} {job_id}", flush=True)
            except CliError as exc:
                if exc.code == Exit.UNREACHABLE:  # the next ids would fail the same way
                    raise
                terminal.note(f"dalston: {job_id}: {exc.message}")
                failures.append(exc)
    if failures:
        raise typer.Exit(failures[0].code)


@app.command("cancel")
def cancel(job_ids: JobIds, server: options.Server = None, api_key: options.ApiKey = None) -> None:
    """Stop pending or running jobs."""
    _each(job_ids, server, api_key, "POST", "/cancel", "cancelled")


@app.command("rm")
def remove(job_ids: JobIds, server: options.Server = None, api_key: options.ApiKey = None) -> None:
    """Delete finished jobs with their audio and transcripts."""
    _each(job_ids, server, api_key, "DELETE", "", "deleted")


@app.command("export")
def export(
    job_id: JobId,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="transcript format")] = Format.txt,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="file or directory to write; default: print (docx/pdf: ./transcript-ID.FORMAT)"),
    ] = None,
    server: options.Server = None,
    api_key: options.ApiKey = None,
) -> None:
    """A completed job's transcript as txt, srt, vtt, json, docx or pdf."""
    with connect(server, api_key) as api:
        content = exports.fetch(api, job_id, fmt)
    if out is None and fmt not in exports.BINARY:
        exports.emit(content)
        return
    target = out or Path(".")
    if target.is_dir():
        target = target / f"transcript-{job_id}.{fmt.value}"
    terminal.note(f"wrote {exports.write(target, content)}")
