"""Getting the audio of a request that is not a plain upload.

- `fetch_url`: `cloud_storage_url`/`source_url` media, streamed over HTTP(S) to a temp
  file under the upload size limit, through the shared SSRF guard (`shared.urls`): hosts
  that resolve to private, loopback, link-local or otherwise special addresses are refused
  unless `allow_private_urls` is set, each request connects to the address that was
  checked, and redirects are followed by hand so every hop is checked.
- `wrap_pcm`: `file_format=pcm_s16le_16` bodies (raw 16 kHz mono 16-bit PCM, no
  container) get a WAV header, so probing and decoding treat them like any other file.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path
from urllib.parse import unquote

import httpx

from gateway.errors import ApiError
from gateway.uploads import Upload, too_large
from shared import urls

MAX_REDIRECTS = 5
PCM_RATE = 16_000
PCM_WIDTH = 2
_CHUNK = 1024 * 1024


def _unreachable(message: str) -> ApiError:
    return ApiError(400, "source_url_unreachable", message)


async def check_url(url: httpx.URL, *, allow_private: bool) -> urls.Target:
    """The shared SSRF guard (`shared.urls`), with this API's error codes."""
    try:
        return await urls.check_url(url, allow_private=allow_private, what="media URLs", allow_credentials=True)
    except urls.UrlInvalid as exc:
        raise ApiError(400, "invalid_parameter", f"the media URL is not usable: {exc}") from exc
    except urls.UrlRefused as exc:
        raise ApiError(400, "source_url_refused", f"the media URL is refused: {exc}") from exc
    except urls.UrlUnresolvable as exc:
        raise _unreachable(f"the media URL cannot be fetched: {exc}") from exc


def _filename(url: httpx.URL) -> str | None:
    name = unquote(url.path.rsplit("/", 1)[-1])[:255]
    return name or None


async def fetch_url(url: str, directory: Path, *, max_bytes: int, timeout: float, allow_private: bool) -> Upload:
    """Download `url` into `directory`; the result is an `Upload` like a multipart file."""
    try:
        current = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ApiError(400, "invalid_parameter", f"the media URL is not a valid URL: {exc}") from exc
    path = directory / "download"
    try:
        async with httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)), follow_redirects=False
        ) as client:
            for _ in range(MAX_REDIRECTS + 1):
                target = await check_url(current, allow_private=allow_private)
                # Connect to the address that was checked, so DNS cannot change under us.
                pinned = target.pinned_url()
                headers, extensions = target.request_headers(), target.request_extensions()
                async with client.stream("GET", pinned, headers=headers, extensions=extensions) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = current.join(response.headers["location"])
                        continue
                    if response.status_code >= 400:
                        raise _unreachable(f"fetching the media URL failed with HTTP {response.status_code}")
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise too_large(max_bytes)
                    size = 0
                    with path.open("wb") as out:
                        async for chunk in response.aiter_bytes(_CHUNK):
                            size += len(chunk)
                            if size > max_bytes:
                                raise too_large(max_bytes)
                            out.write(chunk)
                    content_type = response.headers.get("content-type")
                    return Upload(path=path, filename=_filename(current), content_type=content_type, size=size)
    except httpx.TimeoutException as exc:
        raise _unreachable(f"fetching the media URL timed out after {timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise _unreachable(f"fetching the media URL failed: {type(exc).__name__}: {exc}") from exc
    raise _unreachable(f"the media URL redirected more than {MAX_REDIRECTS} times")


def wrap_pcm(upload: Upload, directory: Path) -> Upload:
    """A WAV file around the upload's raw 16 kHz mono s16le bytes."""
    if upload.path is None or upload.size == 0:
        raise ApiError(400, "empty_file", "the uploaded file is empty")
    if upload.size % PCM_WIDTH:
        raise ApiError(
            400, "invalid_audio", "file_format=pcm_s16le_16 data must be whole 16-bit samples (an even number of bytes)"
        )
    path = directory / "pcm.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(PCM_WIDTH)
        out.setframerate(PCM_RATE)
        out.setnframes(upload.size // PCM_WIDTH)  # header written once, no rewrite needed
        with upload.path.open("rb") as src:
            while block := src.read(_CHUNK):
                out.writeframesraw(block)
    stem = os.path.splitext(upload.filename or "audio")[0] or "audio"
    return Upload(fields=upload.fields, path=path, filename=f"{stem}.wav", content_type="audio/wav", size=path.stat().st_size)
