"""A hostile-input corpus: every file and frame is generated here from code.

Uploads go through the native, ElevenLabs and OpenAI endpoints of the app in-process;
WebSocket frames go through a real gateway process and realtime worker. Each bad input
must get a clear 4xx (or error message / close code) in its API's shape, and the service
must keep serving afterwards.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
import websockets
from gateway_process import Gateway, start_gateway
from test_gateway_api import add_key, make_client, settings  # noqa: F401 - fixtures

from shared.audio import probe

ROOT = Path(__file__).resolve().parents[2]
SHORT_WAV = (ROOT / "tests" / "fixtures" / "short_en.wav").read_bytes()
URL = "/v1/audio/transcriptions"
MAX_AUDIO_S = 10.0
DEEP = "[" * 5000 + "]" * 5000


# -- the corpus -----------------------------------------------------------------------


def wav(
    *,
    channels: int = 1,
    rate: int = 16000,
    bits: int = 16,
    tag: int = 1,
    data: bytes = b"\0" * 32000,
    data_size: int | None = None,
) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", 36 + len(data)) + body


def silence_bomb(path: Path, seconds: float) -> Path:
    """A small FLAC that decodes to `seconds` of silence (FLAC compresses silence to almost nothing)."""
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=8000, layout="mono")
        frame_len = 4096
        zeros = np.zeros((1, frame_len), dtype=np.int16)
        for i in range(int(seconds * 8000 / frame_len)):
            frame = av.AudioFrame.from_ndarray(zeros, format="s16", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * frame_len
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    return silence_bomb(tmp_path_factory.mktemp("bomb") / "silence.flac", 1200)  # 20 minutes in ~300 KB


# name -> (bytes, expected native status, expected native code)
CORPUS: dict[str, tuple[bytes, int, str]] = {
    "empty": (b"", 400, "empty_file"),
    "garbage": (bytes(range(256)) * 64, 400, "invalid_audio"),
    "riff_only": (b"RIFF", 400, "invalid_audio"),
    "truncated_wav_header": (wav()[:30], 400, "invalid_audio"),
    "wav_header_without_data": (wav(data=b""), 400, "invalid_audio"),
    "wav_zero_bits": (wav(bits=0), 400, "invalid_audio"),
    "wav_unknown_codec": (wav(tag=0x1234), 400, "invalid_audio"),
    "wav_zero_channels": (wav(channels=0), 400, "invalid_audio"),
    "wav_zero_rate": (wav(rate=0), 400, "invalid_audio"),
    "mp3_sync_garbage": (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 5000, 400, "invalid_audio"),
    "flac_magic_only": (b"fLaC" + b"\0" * 40, 400, "invalid_audio"),
    "ogg_cut_in_header": (b"OggS\x00\x02" + b"\0" * 100, 400, "invalid_audio"),
}


# -- uploads --------------------------------------------------------------------------


@pytest.fixture
async def api(make_client) -> httpx.AsyncClient:  # noqa: F811
    client, services = await make_client(max_audio_seconds=MAX_AUDIO_S)
    key = await add_key(services)
    client.headers["Authorization"] = f"Bearer {key}"
    client.headers["xi-api-key"] = key
    return client


async def _still_serving(api: httpx.AsyncClient) -> None:
    response = await api.post(URL, files={"file": ("ok.wav", SHORT_WAV, "audio/wav")})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("name", list(CORPUS))
async def test_corrupt_uploads_get_clear_4xx_on_every_api(api: httpx.AsyncClient, name: str) -> None:
    content, status, code = CORPUS[name]
    native = await api.post(URL, files={"file": (f"{name}.wav", content, "audio/wav")})
    assert (native.status_code, native.json()["error"]["code"]) == (status, code), native.text
    assert native.json()["error"]["message"]

    openai = await api.post(URL, files={"file": (f"{name}.wav", content)}, data={"model": "whisper-1"})
    assert openai.status_code == status, openai.text
    assert openai.json()["error"]["type"] == "invalid_request_error" and openai.json()["error"]["message"]

    elevenlabs = await api.post("/v1/speech-to-text", files={"file": (f"{name}.wav", content)}, data={"model_id": "scribe_v1"})
    assert elevenlabs.status_code == status, elevenlabs.text
    assert elevenlabs.json()["detail"]["status"] == code and elevenlabs.json()["detail"]["message"]
    await _still_serving(api)


async def test_silence_bomb_is_refused_without_decoding_it_all(api: httpx.AsyncClient, bomb: Path) -> None:
    assert bomb.stat().st_size < 1_000_000
    # The probe stops at the limit instead of decoding all twenty minutes.
    assert MAX_AUDIO_S < probe(bomb, max_duration=MAX_AUDIO_S).duration < MAX_AUDIO_S + 1
    content = bomb.read_bytes()
    native = await api.post(URL, files={"file": ("bomb.flac", content)})
    assert native.status_code == 413 and native.json()["error"]["code"] == "audio_too_long"
    openai = await api.post(URL, files={"file": ("bomb.flac", content)}, data={"model": "whisper-1"})
    assert openai.status_code == 413 and openai.json()["error"]["code"] == "audio_too_long"
    elevenlabs = await api.post("/v1/speech-to-text", files={"file": ("bomb.flac", content)}, data={"model_id": "scribe_v1"})
    assert elevenlabs.status_code == 413 and elevenlabs.json()["detail"]["status"] == "audio_too_long"
    await _still_serving(api)


async def test_huge_declared_wav_size_uses_the_real_data(api: httpx.AsyncClient) -> None:
    # A header claiming 4 GiB of samples (as streaming recorders write) over 1 s of audio.
    response = await api.post(URL, files={"file": ("stream.wav", wav(data_size=0xFFFFFFFF), "audio/wav")})
    assert response.status_code == 201, response.text
    assert response.json()["audio"]["duration"] == pytest.approx(1.0)


async def test_non_utf8_fields_and_filenames(api: httpx.AsyncClient) -> None:
    boundary = "hostileboundary"
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"language\"\r\n\r\n".encode() + b"\xff\xfe\xfd\r\n"
        + f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"".encode() + b"\xff\xfe.wav"
        + b"\"\r\nContent-Type: audio/wav\r\n\r\n" + SHORT_WAV + f"\r\n--{boundary}--\r\n".encode()
    )  # fmt: skip
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    response = await api.post(URL, content=body, headers=headers)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_language", response.text
    # A bad filename alone is harmless: the job is accepted.
    ok = await api.post(URL, content=body.replace(b"\xff\xfe\xfd", b"en"), headers=headers)
    assert ok.status_code == 201, ok.text
    await _still_serving(api)


async def test_deeply_nested_json_in_form_fields(api: httpx.AsyncClient) -> None:
    files = {"file": ("ok.wav", SHORT_WAV, "audio/wav")}
    elevenlabs = await api.post("/v1/speech-to-text", files=files, data={"model_id": "scribe_v1", "additional_formats": DEEP})
    assert elevenlabs.status_code == 422 and "nested deeper" in elevenlabs.json()["detail"]["message"], elevenlabs.text
    metadata = await api.post(
        "/v1/speech-to-text", files=files, data={"model_id": "scribe_v1", "webhook": "true", "webhook_metadata": DEEP}
    )
    assert metadata.status_code in (400, 422) and "nested deeper" in metadata.json()["detail"]["message"], metadata.text
    openai = await api.post(URL, files=files, data={"model": "whisper-1", "timestamp_granularities": DEEP})
    assert openai.status_code == 400 and "nested deeper" in openai.json()["error"]["message"], openai.text
    await _still_serving(api)


async def test_json_bodies_queries_and_multipart_framing(api: httpx.AsyncClient) -> None:
    deep = await api.post("/v1/webhooks", content=DEEP, headers={"Content-Type": "application/json"})
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "json_too_deep", deep.text

    big = await api.post(
        "/v1/webhooks", content=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers={"Content-Type": "application/json"}
    )
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"

    async def chunked():  # no Content-Length: refused once the stream crosses the limit
        for _ in range(40):
            yield b" " * 65536

    streamed = await api.post("/v1/webhooks", content=chunked(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413

    not_utf8 = await api.post("/v1/webhooks", content=b'{"url": "\xff\xfe"}', headers={"Content-Type": "application/json"})
    assert 400 <= not_utf8.status_code < 500

    long_query = await api.get(URL, params={"cursor": "x" * 20000})
    assert long_query.status_code == 414 and long_query.json()["error"]["code"] == "uri_too_long"
    el_query = await api.get("/v1/speech-to-text/transcripts/x", params={"q": "x" * 20000})
    assert el_query.status_code == 414 and el_query.json()["detail"]["status"] == "uri_too_long"

    unterminated = await api.post(
        URL,
        content=b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc',
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert unterminated.status_code == 400 and unterminated.json()["error"]["code"] == "malformed_multipart"
    await _still_serving(api)


# -- WebSocket frames through the real gateway and worker --------------------------------

MAX_CHUNK = 65_536


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[Gateway]:
    env = {"DALSTON_REALTIME_MAX_CHUNK_BYTES": str(MAX_CHUNK), "DALSTON_REALTIME_WORKER_CAPACITY": "4"}
    yield from start_gateway(tmp_path_factory.mktemp("hostile-gw"), env, worker=True)


async def _connect(gateway: Gateway, path: str) -> websockets.ClientConnection:
    headers = {"Authorization": f"Bearer {await gateway.add_key()}"}
    ws = await websockets.connect(f"{gateway.ws_url}{path}", additional_headers=headers, open_timeout=30, max_size=None)
    return ws


async def _next(ws: websockets.ClientConnection) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), 60))


async def _closed_with(ws: websockets.ClientConnection) -> int | None:
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 60)
    return ws.close_code


async def test_native_websocket_frames(gateway: Gateway) -> None:
    ws = await _connect(gateway, "/v1/audio/transcriptions/stream")
    assert (await _next(ws))["type"] == "session.begin"
    soft = [
        (b"\x01\x02\x03", "invalid_audio"),  # odd byte count: not 16-bit PCM
        (b"\0" * (MAX_CHUNK + 2), "chunk_too_large"),
        ("{not json", "invalid_json"),
        (DEEP, "invalid_json"),
        ('{"type": "config", "interim_results": {"a": [1, 2]}}', "invalid_message"),
        ('{"type": "launch_missiles"}', "invalid_message"),
        ("x" * (200 * 1024), "invalid_message"),  # an oversize control message
    ]
    for frame, code in soft:
        await ws.send(frame)
        error = await _next(ws)
        assert error["type"] == "error" and error["code"] == code and error["fatal"] is False, (code, error)
    # Random bytes of even length are (noisy) PCM: accepted. The session is still alive.
    await ws.send(np.random.default_rng(0).integers(0, 256, 3200, dtype=np.uint8).tobytes())
    await ws.send(json.dumps({"type": "end"}))
    messages = []
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), 60)))
    assert messages[-1]["type"] == "session.end" and ws.close_code == 1000

    # Non-UTF-8 text is a protocol violation: the server closes with 1007.
    ws = await _connect(gateway, "/v1/audio/transcriptions/stream")
    assert (await _next(ws))["type"] == "session.begin"
    await ws.send(b"\xff\xfe\xfd", text=True)
    assert await _closed_with(ws) == 1007

    # A frame past the server's message limit closes with 1009 before it is buffered.
    ws = await _connect(gateway, "/v1/audio/transcriptions/stream")
    assert (await _next(ws))["type"] == "session.begin"
    await ws.send(b"\0" * (2 * 1024 * 1024))
    assert await _closed_with(ws) == 1009
    gateway.alive()


async def test_elevenlabs_websocket_frames(gateway: Gateway) -> None:
    path = "/v1/speech-to-text/realtime?model_id=scribe_v2_realtime"
    ws = await _connect(gateway, path)
    assert (await _next(ws))["message_type"] == "session_started"
    soft = [
        (b"\x00\x01binary", "input_error"),
        ("{not json", "input_error"),
        (DEEP, "input_error"),
        ('"a string"', "input_error"),
        ('{"message_type": "input_audio_chunk", "audio_base_64": "***not base64***"}', "input_error"),
        ('{"message_type": "input_audio_chunk", "audio_base_64": {"nested": [1]}}', "input_error"),
        (json.dumps({"message_type": "input_audio_chunk", "audio_base_64": "A" * (MAX_CHUNK * 2)}), "chunk_size_exceeded"),
        ("x" * (300 * 1024), "chunk_size_exceeded"),
    ]
    for frame, kind in soft:
        await ws.send(frame)
        error = await _next(ws)
        assert error["message_type"] == kind and error["error"], (kind, error)
    # Still a working session: a commit of nothing is accepted silently, a chunk too.
    await ws.send(
        json.dumps({"message_type": "input_audio_chunk", "audio_base_64": "AAAA", "commit": False, "sample_rate": 16000})
    )
    await ws.close()

    ws = await _connect(gateway, path)
    assert (await _next(ws))["message_type"] == "session_started"
    await ws.send(b"\xc3\x28", text=True)
    assert await _closed_with(ws) == 1007
    gateway.alive()
