"""Streaming multipart uploads: the file part goes to a temp file chunk by chunk.

Starlette's `request.form()` would also spool to disk, but it cannot stop at a size
limit while reading, and it hides the byte count. Here the body is fed to
python-multipart's push parser straight from `request.stream()`, so memory stays flat
and an oversize upload is refused as soon as it crosses the limit.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from gateway.errors import ApiError
from shared import scratch

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

# Form fields are small strings; a cap keeps a hostile body from filling memory.
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS_TOTAL_BYTES = 1024 * 1024
# Room for boundaries, part headers and form fields when judging Content-Length up front.
MULTIPART_OVERHEAD_BYTES = MAX_FIELDS_TOTAL_BYTES


@dataclass
class Upload:
    fields: dict[str, list[str]] = field(default_factory=dict)
    path: Path | None = None
    filename: str | None = None
    content_type: str | None = None
    size: int = 0

    def get(self, name: str) -> str | None:
        """The first value of a field, stripped; empty means absent."""
        values = self.fields.get(name)
        value = values[0].strip() if values else ""
        return value or None


def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "file_too_large", f"the uploaded file exceeds the limit of {max_bytes} bytes")


class _Receiver:
    """Parser callbacks: route each part's bytes to the temp file or a field buffer."""

    def __init__(self, directory: Path, file_field: str, max_bytes: int) -> None:
        self.directory = directory
        self.file_field = file_field
        self.max_bytes = max_bytes
        self.upload = Upload()
        self.ended = False
        self._header_name = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._name: str | None = None
        self._buffer = bytearray()
        self._file: BinaryIO | None = None
        self._is_file = False
        self._field_bytes = 0

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._name = None
        self._buffer = bytearray()
        self._is_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = options.get(b"name")
        if name is None:
            raise ApiError(400, "malformed_multipart", "a multipart part has no field name")
        self._name = name.decode("utf-8", "replace")
        if self._name != self.file_field:
            return
        if self._file is not None or self.upload.path is not None:
            raise ApiError(400, "multiple_files", f"send exactly one {self.file_field!r} part")
        self._is_file = True
        raw_filename = options.get(b"filename")
        if raw_filename is not None:
            # Browsers and SDKs send bare names; keep only the last path component regardless.
            filename = raw_filename.decode("utf-8", "replace").replace("\\", "/").rsplit("/", 1)[-1][:255]
            self.upload.filename = filename or None
        content_type = self._headers.get(b"content-type")
        self.upload.content_type = content_type.decode("latin-1") if content_type else None
        self.upload.path = self.directory / "upload"
        self._file = open(self.upload.path, "wb")  # noqa: SIM115 - closed in on_part_end / close()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if self._is_file:
            self.upload.size += len(chunk)
            if self.upload.size > self.max_bytes:
                raise too_large(self.max_bytes)
            # Local-disk writes of parser-sized chunks are short; not worth a thread hop each.
            assert self._file is not None, "on_headers_finished opens the file of a file part"
            self._file.write(chunk)
            return
        self._field_bytes += len(chunk)
        if len(self._buffer) + len(chunk) > MAX_FIELD_BYTES or self._field_bytes > MAX_FIELDS_TOTAL_BYTES:
            raise ApiError(400, "field_too_large", f"form field {self._name!r} is too large")
        self._buffer += chunk

    def on_part_end(self) -> None:
        if self._is_file:
            self.close()
        elif self._name is not None:
            value = self._buffer.decode("utf-8", "replace")
            self.upload.fields.setdefault(self._name, []).append(value)

    def on_end(self) -> None:
        self.ended = True

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


async def _parse(request: Request, directory: Path, file_field: str, max_bytes: int) -> Upload:
    content_type, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise ApiError(415, "invalid_content_type", "send the request as multipart/form-data")

    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + MULTIPART_OVERHEAD_BYTES:
        raise too_large(max_bytes)

    receiver = _Receiver(directory, file_field, max_bytes)
    try:
        parser = MultipartParser(boundary, receiver.callbacks())
        async for chunk in request.stream():
            if chunk:
                parser.write(chunk)
    except MultipartParseError as exc:
        raise ApiError(400, "malformed_multipart", f"the multipart body could not be parsed: {exc}") from exc
    except ClientDisconnect as exc:
        raise ApiError(400, "upload_incomplete", "the client disconnected before the upload finished") from exc
    finally:
        receiver.close()
    if not receiver.ended:
        raise ApiError(400, "malformed_multipart", "the multipart body ended before its closing boundary")
    return receiver.upload


@asynccontextmanager
async def receive_upload(request: Request, *, max_bytes: int, file_field: str = "file") -> AsyncIterator[Upload]:
    """Parse a multipart request, streaming `file_field` to a temp file removed on exit."""
    # Removed below on every exit path; a killed gateway's are swept at its next start.
    directory = scratch.make_dir(scratch.UPLOAD)
    try:
        yield await _parse(request, directory, file_field, max_bytes)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def file_extension(filename: str | None) -> str:
    """A short, safe extension for the storage key (".mp3"), or "" when there is none."""
    ext = os.path.splitext(filename or "")[1].lower()
    return ext if 1 < len(ext) <= 10 and ext[1:].isalnum() else ""


def multipart_openapi(required: list[str], properties: dict[str, dict]) -> dict:
    """OpenAPI for a route that parses its own multipart body (FastAPI cannot infer it)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": {"type": "object", "required": required, "properties": properties}}},
        }
    }
