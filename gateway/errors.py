"""One error shape for the native API: `{"error": {"code": "...", "message": "..."}}`.

Route code raises `ApiError`; the handlers here turn it, FastAPI's validation errors and
Starlette's HTTP exceptions into that shape. Unhandled exceptions are turned into a 500
of the same shape by `gateway.middleware.RequestContextMiddleware`, except a dependency
outage (shared.outages), which is a 503 `service_unavailable` with `Retry-After`
(`outage_error`), rendered in the shape of the API the path belongs to.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.outages import unavailable

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}

SERVICE_UNAVAILABLE = "service_unavailable"
# PostgreSQL and Redis restart in seconds (`dalston up` restarts its embedded ones at once);
# a client that waits this long usually finds them back.
OUTAGE_RETRY_AFTER_S = 5


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def outage_error(exc: BaseException) -> ApiError | None:
    """The 503 for an exception that says PostgreSQL, Redis or object storage is unreachable;
    None for any other exception (a bug stays a 500)."""
    dependency = unavailable(exc)
    if dependency is None:
        return None
    return ApiError(
        503,
        SERVICE_UNAVAILABLE,
        f"{dependency.value} is unavailable right now; retry in a few seconds",
        headers={"Retry-After": str(OUTAGE_RETRY_AFTER_S)},
    )


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _field(loc: tuple) -> str:
    # loc is e.g. ("query", "limit") or ("body", "file"); the first element is the source.
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(p) for p in loc]
    return ".".join(parts)


# Starlette types every exception handler as taking `Exception`; each is registered for one
# class in `install`, so the isinstance asserts below always hold.
async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    field = _field(tuple(first.get("loc", ())))
    message = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
    return error_response(400, "invalid_parameter", message)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
