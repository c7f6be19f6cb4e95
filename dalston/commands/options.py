"""Options every client command takes."""

from __future__ import annotations

from typing import Annotated

import typer

Server = Annotated[
    str | None,
    typer.Option(
        "--server",
        "-s",
        help="server URL [default: $DALSTON_SERVER, else the local `dalston up`]",
        show_default=False,
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        "-k",
        help="API key [default: $DALSTON_API_KEY, else the admin key `dalston up` saved]",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="print the API's JSON instead of a table")]
Limit = Annotated[int, typer.Option("--limit", "-n", min=1, max=100, help="how many, newest first")]
