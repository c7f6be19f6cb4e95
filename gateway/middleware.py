"""Per-request context: request id, access log, metrics, and the last-resort 500 (503 when
a dependency is down: gateway.errors.outage_error)."""

from __future__ import annotations

import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.errors import error_response, outage_error
from gateway.limits import error_for_path
from gateway.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = structlog.get_logger("gateway.http")

REQUEST_ID_HEADER = "x-request-id"
# Echo a caller's id only when it is short and harmless to put in logs and headers.
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == REQUEST_ID_HEADER.encode():
            candidate = value.decode("latin-1")
            if _SAFE_REQUEST_ID.match(candidate):
                return candidate
    return uuid.uuid4().hex


def _route_name(scope: Scope) -> str:
    # The route template, not the raw path, keeps metric label cardinality bounded.
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestContextMiddleware:
    """Pure ASGI so streamed request bodies pass through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        request_id = _request_id(scope)
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (REQUEST_ID_HEADER.encode(), request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            outage = outage_error(exc)
            if outage is not None:
                # Not a bug: PostgreSQL, Redis or storage is down. One line, no traceback.
                log.warning("dependency_unavailable", path=scope.get("path"), error=f"{type(exc).__name__}: {exc}")
            else:
                log.exception("unhandled_error", method=scope.get("method"), path=scope.get("path"))
            if scope["type"] == "http" and not response_started:
                if outage is not None:
                    response = error_for_path(scope["path"], outage.status, outage.code, outage.message, outage.headers)
                else:
                    response = error_response(
                        500, "internal_error", "internal server error; see logs for request id " + request_id
                    )
                await response(scope, receive, send_with_id)
            else:
                raise
        finally:
            if scope["type"] == "http":
                elapsed = time.perf_counter() - started
                route = _route_name(scope)
                HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
                HTTP_LATENCY.labels(scope["method"], route).observe(elapsed)
                log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 1),
                )
            structlog.contextvars.unbind_contextvars("request_id")
