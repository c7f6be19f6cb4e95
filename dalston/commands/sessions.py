"""`dalston sessions ls`: the realtime session history of the key's tenant."""

from __future__ import annotations

from typing import Annotated

import typer

from dalston import terminal
from dalston.client import connect
from dalston.commands import options

app = typer.Typer(help="Realtime sessions.")


@app.callback(invoke_without_command=True)
def _default(ctx: typer.Context) -> None:
    """Without a subcommand: `ls`."""
    if ctx.invoked_subcommand is None:
        list_sessions(status=None, limit=20, json_=False, server=None, api_key=None)


@app.command("ls")
def list_sessions(
    status: Annotated[str | None, typer.Option(help="active, completed, interrupted or failed")] = None,
    limit: options.Limit = 20,
    json_: options.Json = False,
    server: options.Server = None,
    api_key: options.ApiKey = None,
) -> None:
    """The newest realtime sessions."""
    with connect(server, api_key) as api:
        page = api.get("/v1/realtime/sessions", limit=limit, status=status)
    if json_:
        terminal.print_json(page)
        return
    terminal.table(
        ["ID", "STATUS", "MODEL", "AUDIO", "WORDS", "STARTED", "ENHANCEMENT JOB"],
        (
            [
                str(s["id"]),
                s["status"],
                s["model"],
                terminal.seconds(s.get("audio_duration")),
                str(s["word_count"]),
                terminal.when(s["started_at"]),
                terminal.text(s.get("enhancement_job_id") or s.get("enhancement_error")),
            ]
            for s in page["sessions"]
        ),
        empty="no sessions",
    )
