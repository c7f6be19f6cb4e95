"""The `dalston` command: `up` and `migrate` run the server; the other commands are its client."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.main import get_command

from dalston import terminal
from dalston.client import CliError, Exit
from dalston.commands import jobs, keys, listen, sessions, status, transcribe

EXIT_CODES = (
    f"Exit codes: {Exit.OK} done; {Exit.ERROR} the API refused the request, or a job failed or was cancelled; "
    f"{Exit.USAGE} bad command line; {Exit.NOT_FOUND} no such job, session or key; "
    f"{Exit.AUTH} no key, a wrong key, or a key without the needed scope; {Exit.UNREACHABLE} the server cannot be reached; "
    f"{Exit.INTERRUPTED} interrupted (Ctrl-C).\n\n"
    "Server and key: --server / $DALSTON_SERVER and --api-key / $DALSTON_API_KEY, else the local `dalston up`: "
    "http://127.0.0.1:$DALSTON_PORT (8000) and the admin key it saved in $DALSTON_DATA_DIR/admin_api_key (.dalston)."
)

app = typer.Typer(
    name="dalston",
    help="Dalston, a self-hosted speech-to-text server: run it (`up`), and use it from the shell.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="state directory (env DALSTON_DATA_DIR, default .dalston)", show_default=False),
]


@app.command("up")
def up(
    port: Annotated[
        int | None, typer.Option("--port", "-p", help="gateway port (env DALSTON_PORT, default 8000)", show_default=False)
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="gateway bind address (env DALSTON_HOST, default 127.0.0.1)", show_default=False)
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run every service locally (embedded PostgreSQL/Redis unless URLs are set)."""
    from dalston.embedded import DataDirLocked
    from dalston.up import resolve_settings, up_command

    try:
        raise typer.Exit(up_command(resolve_settings(host=host, port=port, data_dir=data_dir)))
    except DataDirLocked as exc:
        raise CliError(str(exc)) from exc


@app.command("migrate")
def migrate(data_dir: DataDir = None) -> None:
    """Apply database migrations and make sure an admin API key exists."""
    from dalston.embedded import DataDirLocked
    from dalston.up import migrate_command, resolve_settings

    try:
        raise typer.Exit(migrate_command(resolve_settings(data_dir=data_dir)))
    except DataDirLocked as exc:
        raise CliError(str(exc)) from exc


app.command("transcribe")(transcribe.transcribe)
app.command("listen")(listen.listen)
app.add_typer(jobs.app, name="jobs")
app.add_typer(sessions.app, name="sessions")
app.command("status")(status.status)
app.add_typer(keys.app, name="keys")


def main(argv: list[str] | None = None) -> int:
    try:
        get_command(app).main(args=argv, prog_name="dalston", standalone_mode=True)
    except CliError as exc:
        terminal.err.print(f"dalston: {exc.message}", markup=False, highlight=False, soft_wrap=True)
        return int(exc.code)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
