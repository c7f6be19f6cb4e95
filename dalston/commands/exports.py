"""Transcript files through the server's export endpoint (`GET /v1/audio/transcriptions/{id}/export/{format}`):
the server renders every format, the command line only writes or prints what it gets."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

from dalston.client import Api


class Format(StrEnum):
    """The export formats offered on the command line: the server's (shared.formats.EXPORT_FORMATS)."""

    txt = "txt"
    srt = "srt"
    vtt = "vtt"
    json = "json"
    docx = "docx"
    pdf = "pdf"


BINARY = {Format.docx, Format.pdf}


def fetch(api: Api, job_id: str, fmt: Format) -> bytes:
    return api.request("GET", f"/v1/audio/transcriptions/{job_id}/export/{fmt.value}").content


def write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def emit(content: bytes) -> None:
    """A text export on stdout, ending with a newline like any text a shell prints."""
    sys.stdout.buffer.write(content if content.endswith(b"\n") else content + b"\n")
    sys.stdout.buffer.flush()
