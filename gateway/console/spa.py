"""Serving the console's built single-page app (`console/dist`) at `/console`.

Any `/console/<path>` that is not a file is answered with index.html, so the SPA's own
routes survive a reload. Vite names built assets by content hash, so files under
`assets/` may be cached forever; index.html must be revalidated so a new build is seen.
The SPA holds no secrets (its data comes from the authenticated API), so these routes are
public. Without a build the console answers 503 with how to make one.
"""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.auth import public
from gateway.errors import ApiError

CONSOLE_PATH = "/console"
BUILD_COMMAND = "npm --prefix console ci && npm --prefix console run build"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

NOT_BUILT = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Dalston console not built</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>The console is not built</h1>
<p>Build it from the repository root (Node.js 20 or newer), then reload this page:</p>
<pre>{html.escape(BUILD_COMMAND)}</pre>
<p><code>dalston up</code> builds it by itself when <code>npm</code> is installed. The API works without it.</p>
</body></html>
"""

router = APIRouter(include_in_schema=False)


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "no such console file")


def serve(dist: Path, path: str) -> Response:
    """The response for `/console/{path}` from the build in `dist`."""
    root = dist.resolve()
    index = root / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
    if path:
        try:
            target = (root / path).resolve()
        except (OSError, ValueError):  # e.g. a NUL byte
            raise _not_found() from None
        if not target.is_relative_to(root):
            raise _not_found()  # `..` or a link out of the build
        if target.is_file():
            hashed = target.is_relative_to(root / "assets")
            return FileResponse(target, headers={"Cache-Control": IMMUTABLE if hashed else REVALIDATE})
        if path.startswith("assets/"):
            # A stale page asking for an old build's asset: index.html in its place would
            # only fail to parse as a script.
            raise _not_found()
    return FileResponse(index, media_type="text/html; charset=utf-8", headers={"Cache-Control": REVALIDATE})


@router.get(CONSOLE_PATH, dependencies=[Depends(public())])
async def console_root(request: Request) -> Response:
    return serve(request.app.state.settings.console_dir, "")


@router.get(CONSOLE_PATH + "/{path:path}", dependencies=[Depends(public())])
async def console_file(path: str, request: Request) -> Response:
    return serve(request.app.state.settings.console_dir, path)


class ConsoleGZipMiddleware:
    """Gzip for the console's files only: the API's responses (streamed audio, exports,
    synchronous transcriptions) pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=1024)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == CONSOLE_PATH or path.startswith(CONSOLE_PATH + "/"):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
