"""Getting the audio of a request that is not a plain upload.

- `fetch_url`: `cloud_storage_url`/`source_url` media, streamed over HTTP(S) to a temp
  file under the upload size limit. Hosts that resolve to private, loopback, link-local or
  otherwise special addresses are refused unless `allow_private_urls` is set, so a URL
  cannot make the server reach its own network; redirects are followed by hand so every
  hop is checked.
- `wrap_pcm`: `file_format=pcm_s16le_16` bodies (raw 16 kHz mono 16-bit PCM, no
  container) get a WAV header, so probing and decoding treat them like any other file.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import wave
from pathlib import Path
from urllib.parse import unquote

import httpx

from gateway.errors import ApiError
from gateway.uploads import Upload, too_large

MAX_REDIRECTS = 5
PCM_RATE = 16_000
PCM_WIDTH = 2
_CHUNK = 1024 * 1024


def _unreachable(message: str) -> ApiError:
    return ApiError(400, "source_url_unreachable", message)


def _special(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


async def check_url(url: httpx.URL, *, allow_private: bool) -> None:
    """Refuse non-HTTP(S) URLs and, unless allowed, hosts with a private or special address."""
    if url.scheme not in ("http", "https") or not url.host:
        raise ApiError(400, "invalid_parameter", f"the media URL must be an http(s) URL, not {str(url)[:200]!r}")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(url.host, url.port or (443 if url.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _unreachable(f"cannot resolve the media URL's host {url.host!r}") from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if _special(address):
            raise ApiError(
                400,
                "source_url_refused",
                f"the media URL's host {url.host!r} resolves to a private or reserved address; "
                "fetching such URLs is disabled (DALSTON_ALLOW_PRIVATE_URLS)",
            )


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
        async with httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)), follow_redirects=False) as client:
            for _ in range(MAX_REDIRECTS + 1):
                await check_url(current, allow_private=allow_private)
                async with client.stream("GET", current) as response:
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
        raise ApiError(400, "invalid_audio", "file_format=pcm_s16le_16 data must be whole 16-bit samples (an even number of bytes)")
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

