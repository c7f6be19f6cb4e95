"""`dalston keys create|ls|revoke`: API keys (the key needs the `admin` scope)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dalston import terminal
from dalston.client import connect
from dalston.commands import options

app = typer.Typer(help="API keys (needs an admin key).", no_args_is_help=True)
DEFAULT_SCOPES = ["jobs:read", "jobs:write", "realtime"]


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="what the key is for, e.g. ci")],
    scopes: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="jobs:read, jobs:write, realtime, webhooks or admin; repeat for several [default: jobs:read, jobs:write, realtime]",
        ),
    ] = None,
    tenant: Annotated[str | None, typer.Option(help="tenant name; default: the caller's")] = None,
    create_tenant: Annotated[bool, typer.Option("--create-tenant", help="create --tenant if it does not exist")] = False,
    expires_in: Annotated[int | None, typer.Option("--expires-in", min=60, help="seconds until the key expires")] = None,
    json_: options.Json = False,
    server: options.Server = None,
    api_key: options.ApiKey = None,
) -> None:
    """Create a key; the secret is printed once (stdout), its details on stderr."""
    body: dict[str, Any] = {"name": name, "scopes": scopes or DEFAULT_SCOPES, "create_tenant": create_tenant}
    if tenant is not None:
        body["tenant"] = tenant
    if expires_in is not None:
        body["expires_in_seconds"] = expires_in
    with connect(server, api_key) as api:
        key = api.post("/v1/keys", body)
    if json_:
        terminal.print_json(key)
        return
    terminal.note(f"created key {key['id']} ({key['prefix']}…) for tenant {key['tenant']['name']}: {', '.join(key['scopes'])}")
    terminal.note("the secret is shown only now:")
    print(key["key"], flush=True)


@app.command("ls")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="only this tenant's keys")] = None,
    revoked: Annotated[bool, typer.Option("--revoked", help="include revoked keys")] = False,
    json_: options.Json = False,
    server: options.Server = None,
    api_key: options.ApiKey = None,
) -> None:
    """Every tenant's keys, oldest first, without their secrets."""
    with connect(server, api_key) as api:
        listing = api.get("/v1/keys", tenant=tenant, include_revoked=str(revoked).lower())
    if json_:
        terminal.print_json(listing)
        return
    terminal.table(
        ["ID", "NAME", "PREFIX", "TENANT", "SCOPES", "STATUS", "LAST USED"],
        (
            [
                str(k["id"]),
                k["name"],
                k["prefix"],
                k["tenant"]["name"],
                ",".join(k["scopes"]),
                k["status"],
                terminal.when(k.get("last_used_at")),
            ]
            for k in listing["keys"]
        ),
        empty="no keys",
    )


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="key id (see `dalston keys ls`)")],
    server: options.Server = None,
    api_key: options.ApiKey = None,
) -> None:
    """Revoke a key: it and every token it issued stop working at once."""
    with connect(server, api_key) as api:
        key = api.request("DELETE", f"/v1/keys/{key_id}").json()
    print(f"revoked {key['id']} ({key['name']})", flush=True)
