"""Request size limits in front of every route, and the `RateLimit-*` response headers.

- A query string longer than `max_query_bytes` gets `414`.
- A body that is not `multipart/form-data` (JSON, form-urlencoded, anything else) larger
  than `max_request_body_bytes` gets `413`: refused on its declared `Content-Length`
  before reading, or as soon as a chunked body crosses the limit. Multipart uploads are
  left to `gateway.uploads`, which streams them under `max_upload_bytes`.
- A JSON body nested deeper than `shared.safejson.MAX_DEPTH` gets `400 json_too_deep`
  (the parser would otherwise recurse until it fails).

Each refusal is in the error shape of the API the path belongs to. The body is read here
only up to the limit and then replayed to the app unchanged.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway import errors, openai, ratelimit
from gateway.elevenlabs import errors as elevenlabs_errors
from shared import safejson
from shared.settings import Settings

_ELEVENLABS_PREFIXES = ("/v1/speech-to-text", "/v1/single-use-token")
_OPENAI_PREFIXES = ("/v1/audio/translations", "/v1/models")


def error_for_path(path: str, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error in the shape of the API that serves `path`."""
    if path.startswith(_ELEVENLABS_PREFIXES):
        return elevenlabs_errors.error(status, code, message, headers)
    if path.startswith(_OPENAI_PREFIXES):
        return openai.error_response(status, message, code=code, headers=headers)
    return errors.error_response(status, code, message, headers)


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


class _TooLarge(Exception):
    pass


class RequestLimitsMiddleware:
    """Pure ASGI: multipart bodies stream through untouched."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_request_body_bytes
        self.max_query = settings.max_query_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if len(scope.get("query_string", b"")) > self.max_query:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1009, "reason": "query string too long"})
                return
            refusal = f"the query string is longer than the limit of {self.max_query} bytes"
            await error_for_path(path, 414, "uri_too_long", refusal)(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                # A 429 already reports the limit that refused it.
                extra = [h for h in ratelimit.response_headers(scope.get("state") or {}) if h[0] not in present]
                if extra:
                    message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        headers = Headers(scope=scope)
        content_type = headers.get("content-type", "")
        if content_type.split(";", 1)[0].strip().lower() == "multipart/form-data":
            await self.app(scope, receive, send_with_headers)
            return

        too_large = f"the request body is larger than the limit of {self.max_body} bytes"
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await error_for_path(path, 413, "request_too_large", too_large)(scope, receive, send)
            return
        try:
            body, more = await self._read(receive)
        except _TooLarge:
            await error_for_path(path, 413, "request_too_large", too_large)(scope, receive, send)
            return
        if body and _is_json(content_type):
            try:
                position = safejson.depth_exceeds(body.decode("utf-8"))
            except UnicodeDecodeError:
                position = None  # not our refusal to make: the route reports invalid JSON
            if position is not None:
                message = f"the JSON body is nested deeper than {safejson.MAX_DEPTH} levels (at position {position})"
                await error_for_path(path, 400, "json_too_deep", message)(scope, receive, send)
                return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # e.g. http.disconnect while the response streams

        if more is not None:  # the client disconnected mid-body: pass that on
            replayed = True
            await self.app(scope, more, send_with_headers)
            return
        await self.app(scope, replay, send_with_headers)

    async def _read(self, receive: Receive) -> tuple[bytes, Receive | None]:
        """The whole body (at most max_body bytes); or a receive that reports the disconnect."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":

                async def disconnected() -> Message:
                    return message  # noqa: B023 (returned before the loop moves on)

                return b"", disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), None
