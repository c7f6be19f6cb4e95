"""`dalston status`: is the server up and ready, what realtime capacity is free, which engines run.

Readiness needs no key; realtime needs the `realtime` scope and engines the `admin` scope, so
a narrower key sees less and is told so. Exit 0 when ready, 1 when not, 5 when unreachable."""

from __future__ import annotations

from typing import Any

import typer

from dalston import terminal
from dalston.client import Api, Exit, api_error, connect
from dalston.commands import options


def _optional(api: Api, path: str) -> tuple[dict[str, Any] | None, str | None]:
    """The answer, or why this key cannot see it."""
    response = api.send("GET", path)
    if response.status_code >= 400:
        return None, api_error(response.status_code, response.content).message
    result: dict[str, Any] = response.json()
    return result, None


def status(json_: options.Json = False, server: options.Server = None, api_key: options.ApiKey = None) -> None:
    """Health and readiness of the server, realtime capacity and engines."""
    with connect(server, api_key, timeout=10.0) as api:
        api.request("GET", "/health")
        ready_response = api.send("GET", "/ready")
        ready: dict[str, Any] = ready_response.json() if ready_response.status_code in (200, 503) else {"status": "unknown"}
        realtime, realtime_why = _optional(api, "/v1/realtime/status")
        engines, engines_why = _optional(api, "/v1/console/engines")
        server_url = api.target.server
    is_ready = ready.get("status") == "ready"
    if json_:
        terminal.print_json({"server": server_url, "ready": ready, "realtime": realtime, "engines": engines})
    else:
        checks = ", ".join(f"{k} {v}" for k, v in (ready.get("checks") or {}).items())
        rows = [
            ("server", f"{server_url} up"),
            ("ready", f"{ready.get('status')} ({checks})" if checks else str(ready.get("status"))),
            ("realtime", _realtime_line(realtime) if realtime else f"not shown: {realtime_why}"),
        ]
        if engines is None:
            rows.append(("engines", f"not shown: {engines_why}"))
        terminal.pairs(rows)
        if engines is not None:
            terminal.out.print()
            _engines_table(engines["engines"], engines["window_hours"])
    if not is_ready:
        raise typer.Exit(Exit.ERROR)


def _realtime_line(pool: dict[str, Any]) -> str:
    workers = pool.get("workers") or []
    return (
        f"{pool['status']}: {pool['active_sessions']}/{pool['capacity']} sessions in use, "
        f"{len(workers)} worker(s), models {', '.join(pool.get('models') or []) or '-'}"
    )


def _engines_table(engines: list[dict[str, Any]], hours: int) -> None:
    def state(engine: dict[str, Any]) -> str:
        if engine["instances"]:
            return f"running ×{len(engine['instances'])}"
        return "not configured" if engine.get("unconfigured") else "stopped"

    terminal.table(
        ["ENGINE", "STAGE", "STATE", "QUEUED", f"DONE {hours}H", f"FAILED {hours}H"],
        (
            [
                e["engine_id"] + (" (default)" if e["default_for_stage"] else ""),
                e["stage"],
                state(e),
                terminal.text((e.get("queue") or {}).get("lag")),
                str(e["last_24h"]["completed"]),
                str(e["last_24h"]["failed"]),
            ]
            for e in engines
        ),
    )
