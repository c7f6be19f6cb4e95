"""The command line's connection to a Dalston server: which server and key, the HTTP client,
and every failure turned into one line and an exit code scripts can test."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx


class Exit(IntEnum):
    """Exit codes of the client commands (listed in `dalston --help` and the README)."""

    OK = 0
    ERROR = 1  # the API refused the request, or a job failed or was cancelled
    USAGE = 2  # a bad command line (Click's own code for usage errors)
    NOT_FOUND = 3  # no such job, session or key
    AUTH = 4  # no key, a wrong key, or a key without the scope
    UNREACHABLE = 5  # nothing answers at the server URL, or the connection broke
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class CliError(Exception):
    """A failure to report as one line on stderr, exiting with `code`."""

    def __init__(self, message: str, code: Exit = Exit.ERROR) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())  # one line, whatever the server sent
        self.code = code


DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000  # `dalston up`'s (shared.settings.Settings.port)
DEFAULT_DATA_DIR = ".dalston"  # `dalston up`'s (shared.settings.Settings.data_dir)
KEY_FILE = "admin_api_key"


@dataclass(frozen=True)
class Target:
    server: str  # base URL without a trailing slash
    api_key: str | None
    key_source: str  # where the key came from, for the hint when it is refused


def _server_url(value: str) -> str:
    url = value.strip()
    if "://" not in url:
        url = "http://" + url  # `localhost:8000` is what people type
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"--server must be an http(s) URL such as http://127.0.0.1:8000, not {value!r}", Exit.USAGE)
    return url.rstrip("/")


def _saved_key(data_dir: Path) -> str | None:
    try:
        return (data_dir / KEY_FILE).read_text().strip() or None
    except OSError:
        return None


def resolve_target(server: str | None, api_key: str | None, env: Mapping[str, str] = os.environ) -> Target:
    """Flags first, then DALSTON_SERVER / DALSTON_API_KEY, then what a local `dalston up` uses:
    its port (DALSTON_PORT) on 127.0.0.1 and the admin key it saved in its data directory."""
    if server is None:
        server = env.get("DALSTON_SERVER") or None
    if server is None:
        port = env.get("DALSTON_PORT") or str(DEFAULT_PORT)
        if not port.isdigit():
            raise CliError(f"DALSTON_PORT must be a port number, not {port!r}", Exit.USAGE)
        server = f"http://{DEFAULT_HOST}:{port}"
    if api_key is not None:
        return Target(_server_url(server), api_key, "--api-key")
    if env.get("DALSTON_API_KEY"):
        return Target(_server_url(server), env["DALSTON_API_KEY"], "DALSTON_API_KEY")
    key_file = Path(env.get("DALSTON_DATA_DIR") or DEFAULT_DATA_DIR) / KEY_FILE
    return Target(_server_url(server), _saved_key(key_file.parent), str(key_file))


def api_error(status: int, body: bytes, *, target: Target | None = None) -> CliError:
    """The API's own message (`{"error": {"code", "message"}}`) and the exit code its status means."""
    message, code = "", ""
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        message = str(payload["error"].get("message") or "")
        code = str(payload["error"].get("code") or "")
    elif isinstance(payload, dict) and isinstance(payload.get("detail"), str):
        message = payload["detail"]
    else:
        text = body.decode("utf-8", "replace").strip()
        message = text.splitlines()[0][:200] if text else ""
    label = f"{code}, HTTP {status}" if code else f"HTTP {status}"
    line = f"{message} ({label})" if message else f"the server answered HTTP {status}"
    if status in (401, 403):
        if status == 401 and target is not None:
            line += (
                f"; the key came from {target.key_source}"
                if target.api_key
                else "; no key found: pass --api-key, set DALSTON_API_KEY, or run where `dalston up` saved .dalston/admin_api_key"
            )
        return CliError(line, Exit.AUTH)
    if status == 404:
        return CliError(line, Exit.NOT_FOUND)
    return CliError(line, Exit.ERROR)


def transport_error(exc: httpx.TransportError, server: str) -> CliError:
    """A request that got no HTTP answer."""
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return CliError(f"{server} is not a server URL: {exc}", Exit.USAGE)
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        reason = str(exc) or type(exc).__name__
        return CliError(
            f"cannot reach the Dalston server at {server} ({reason}); is it running? Set --server or DALSTON_SERVER",
            Exit.UNREACHABLE,
        )
    if isinstance(exc, httpx.TimeoutException):
        return CliError(f"the server at {server} did not answer in time ({type(exc).__name__})", Exit.UNREACHABLE)
    return CliError(f"the connection to {server} broke: {exc or type(exc).__name__}", Exit.UNREACHABLE)


class Api:
    """httpx against one server with one key; every failure is a CliError."""

    def __init__(self, target: Target, *, timeout: float = 30.0) -> None:
        self.target = target
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
        self.http = httpx.Client(base_url=target.server, headers=headers, timeout=httpx.Timeout(timeout, connect=5.0))

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Any HTTP answer, error statuses included."""
        try:
            return self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise transport_error(exc, self.target.server) from exc

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A successful answer; an error status raises its CliError."""
        response = self.send(method, path, **kwargs)
        if response.status_code >= 400:
            raise api_error(response.status_code, response.content, target=self.target)
        return response

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json=body).json()

    def delete(self, path: str) -> httpx.Response:
        return self.request("DELETE", path)

    def ws_url(self, path: str, params: Mapping[str, str]) -> str:
        base = "ws" + self.target.server.removeprefix("http")  # http→ws, https→wss
        return f"{base}{path}?{urlencode(params)}" if params else base + path

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.target.api_key}"} if self.target.api_key else {}


def connect(server: str | None, api_key: str | None, *, timeout: float = 30.0) -> Api:
    return Api(resolve_target(server, api_key), timeout=timeout)
