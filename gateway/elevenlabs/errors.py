"""ElevenLabs' error shape, `{"detail": {"status": "...", "message": "..."}}`, for its routes only.

The routes raise the gateway's `ApiError` and the forms module's `FieldError` like every
other API; `ElevenLabsRoute` turns them (and FastAPI's own validation errors) into this
shape. Validation problems are 422, as ElevenLabs answers them. Statuses the official
SDKs retry (408, 409) become 400 when the answer would not change: the Python SDK's
retry drops the form fields, so a retry only turns a clear error into a confusing one.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import ApiError
from gateway.forms import FieldError

# Native error codes that mean "the request is invalid", which ElevenLabs answers with 422.
VALIDATION_CODES = frozenset({"invalid_parameter", "unknown_model", "invalid_language", "unsupported_language"})


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": {"status": code, "message": message}}, status_code=status, headers=headers)


def from_api_error(exc: ApiError) -> JSONResponse:
    status = exc.status
    if status == 400 and exc.code in VALIDATION_CODES:
        status = 422
    elif status in (408, 409):
        status = 400
    return error(status, exc.code, exc.message, exc.headers)


def invalid(message: str) -> ApiError:
    """A request the client must change: 422 in ElevenLabs' shape."""
    return ApiError(400, "invalid_parameter", message)


class ElevenLabsRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return from_api_error(exc)
            except FieldError as exc:
                return error(422, "invalid_parameter", str(exc))
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(p) for p in first.get("loc", ())[1:])
                return error(422, "invalid_parameter", f"{where}: {first.get('msg', 'invalid request')}")

        return route
