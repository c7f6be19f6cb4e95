"""What a running fleet hands back, end to end on the S3 backend (moto's real S3 HTTP server):
every export format read back with its own reader, the ElevenLabs-only formats (html,
segmented_json), ElevenLabs `keyterms` and `enable_logging=false`, OpenAI `diarized_json`
and `include[]=logprobs`, native Standard Webhooks verified with the `standardwebhooks`
library, an upload over the S3 multipart threshold, a file truncated mid-stream, and
realtime close codes (idle timeout; a client that drops without `end`).

The multipart threshold is set to 5 MiB, S3's smallest part size (moto enforces it too),
so a 7 MB upload goes up in two parts; the stored object's ETag (`"...-2"`) shows it.
"""

from __future__ import annotations

import asyncio
import html.parser
import io
import json
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import numpy as np
import pytest
import soxr
import websockets
from harness import API_KEY, RunningFleet, reference, start_fleet, submit, wait_for, wer
from standardwebhooks import Webhook
from support import FIXTURES, Receiver

from shared.audio import read_wav
from shared.formats import EXPORT_FORMATS

pytestmark = pytest.mark.e2e

REDIS_DB = 13  # the e2e modules run one after another; each fleet flushes its database
MAX_WER = 0.30
MULTIPART_THRESHOLD = 5 * 1024 * 1024
IDLE_TIMEOUT_S = 3
SPEECH = FIXTURES / "speech_en.wav"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def s3_fleet(tmp_path_factory, s3_env: dict[str, str]) -> Iterator[RunningFleet]:
    env = {
        **s3_env,
        "DALSTON_S3_MULTIPART_THRESHOLD_BYTES": str(MULTIPART_THRESHOLD),
        "DALSTON_ALLOW_PRIVATE_URLS": "true",  # the webhook receiver listens on loopback
        "DALSTON_WEBHOOK_POLL_INTERVAL_S": "0.2",
        "DALSTON_REALTIME_IDLE_TIMEOUT_S": str(IDLE_TIMEOUT_S),
    }
    yield from start_fleet("s3", tmp_path_factory.mktemp("fleet-outputs"), env, redis_db=REDIS_DB)


@pytest.fixture(scope="module")
def speech_job(s3_fleet: RunningFleet) -> dict[str, Any]:
    with s3_fleet.client() as client:
        job = wait_for(client, submit(client, SPEECH).json()["id"])
    assert job["status"] == "completed", job
    return job


def s3(fleet: RunningFleet) -> Any:
    env = fleet.env
    return boto3.client(
        "s3",
        endpoint_url=env["DALSTON_S3_ENDPOINT_URL"],
        region_name=env["DALSTON_S3_REGION"],
        aws_access_key_id=env["DALSTON_S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["DALSTON_S3_SECRET_ACCESS_KEY"],
    )


def stored_objects(fleet: RunningFleet, prefix: str) -> list[dict[str, Any]]:
    pages = s3(fleet).get_paginator("list_objects_v2").paginate(Bucket=fleet.env["DALSTON_S3_BUCKET"], Prefix=prefix)
    return [obj for page in pages for obj in page.get("Contents", [])]


def untimed(lines: list[str]) -> str:
    """Text of document paragraphs written as `[00:00.0 - 00:04.2] text`."""
    return " ".join(line.split("] ", 1)[-1] for line in lines if line.strip())


def subtitle_text(body: str) -> str:
    return " ".join(line for line in body.splitlines() if line and line != "WEBVTT" and "-->" not in line and not line.isdigit())


class _Paragraphs(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.paragraphs: list[str] = []
        self._in_p = self._in_label = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "p":
            self._in_p = True
            self.paragraphs.append("")
        self._in_label = self._in_label or tag == "strong"

    def handle_endtag(self, tag: str) -> None:
        self._in_p = self._in_p and tag != "p"
        self._in_label = self._in_label and tag != "strong"

    def handle_data(self, data: str) -> None:
        if self._in_p and not self._in_label:  # the time/speaker label is not transcript text
            self.paragraphs[-1] += data


# --- exports ------------------------------------------------------------------------


def test_every_native_export_format_reads_back(s3_fleet: RunningFleet, speech_job: dict[str, Any]) -> None:
    from docx import Document
    from pypdf import PdfReader

    truth = reference("speech_en.txt")
    texts: dict[str, str] = {}
    with s3_fleet.client() as client:
        for fmt, media_type in EXPORT_FORMATS.items():
            response = client.get(f"/v1/audio/transcriptions/{speech_job['id']}/export/{fmt}")
            assert response.status_code == 200, (fmt, response.text)
            assert response.headers["content-type"].split(";")[0] == media_type.split(";")[0], fmt
            if fmt in ("srt", "vtt"):
                texts[fmt] = subtitle_text(response.text)
            elif fmt == "txt":
                texts[fmt] = response.text
            elif fmt == "json":
                body = response.json()
                assert body["segments"] and body["words"], body
                texts[fmt] = body["text"]
            elif fmt == "docx":
                paragraphs = [p.text for p in Document(io.BytesIO(response.content)).paragraphs]
                assert paragraphs[0] == "Transcript", paragraphs
                texts[fmt] = untimed(paragraphs[1:])
            else:
                reader = PdfReader(io.BytesIO(response.content))
                texts[fmt] = untimed(" ".join(page.extract_text() for page in reader.pages).splitlines()[1:])
    assert texts["vtt"] and subtitle_text(texts["vtt"]) == texts["vtt"]
    assert set(texts) == set(EXPORT_FORMATS)
    scores = {fmt: wer(truth, text) for fmt, text in texts.items()}
    assert all(score <= MAX_WER for score in scores.values()), (scores, texts)


def test_elevenlabs_html_and_segmented_json_formats(s3_fleet: RunningFleet) -> None:
    formats = [{"format": "html"}, {"format": "segmented_json"}]
    with SPEECH.open("rb") as f, httpx.Client(base_url=s3_fleet.base_url, timeout=600) as client:
        response = client.post(
            "/v1/speech-to-text",
            headers={"xi-api-key": API_KEY},
            files={"file": (SPEECH.name, f, "audio/wav")},
            data={"model_id": "scribe_v1", "additional_formats": json.dumps(formats)},
        )
    assert response.status_code == 200, response.text
    items = {item["requested_format"]: item for item in response.json()["additional_formats"]}
    truth = reference("speech_en.txt")

    page = items["html"]
    assert (page["file_extension"], page["content_type"], page["is_base64_encoded"]) == ("html", "text/html", False)
    parser = _Paragraphs()
    parser.feed(page["content"])
    assert parser.paragraphs and wer(truth, " ".join(parser.paragraphs)) <= MAX_WER, page["content"]

    segmented = items["segmented_json"]
    assert segmented["file_extension"] == "json" and not segmented["is_base64_encoded"]
    segments = json.loads(segmented["content"])["segments"]
    assert segments and all(s["words"] for s in segments)
    assert wer(truth, " ".join(s["text"] for s in segments)) <= MAX_WER, segments
    words = [w for s in segments for w in s["words"]]
    assert all(a["start"] <= b["start"] for a, b in zip(words, words[1:]))


def test_elevenlabs_keyterms_and_enable_logging_false(s3_fleet: RunningFleet) -> None:
    """keyterms become faster-whisper hotwords (a bias, not a guarantee); enable_logging=false
    deletes the job, its rows and its stored objects once the response is built."""
    with SPEECH.open("rb") as f, httpx.Client(base_url=s3_fleet.base_url, timeout=600) as client:
        response = client.post(
            "/v1/speech-to-text",
            params={"enable_logging": "false"},
            headers={"xi-api-key": API_KEY},
            files={"file": (SPEECH.name, f, "audio/wav")},
            data={"model_id": "scribe_v1", "keyterms": ["Kwik Braun Focks", "laptop"]},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        # Measured: without keyterms the model writes "The quick brown fox" (the reference);
        # with them it writes the keyterm's spelling, so the terms reached the decoder.
        assert "Kwik Braun Focks" in body["text"], body["text"]
        assert wer(reference("speech_en.txt"), body["text"]) <= 0.5, body["text"]
        transcription_id = body["transcription_id"]
        gone = client.get(f"/v1/speech-to-text/transcripts/{transcription_id}", headers={"xi-api-key": API_KEY})
        assert gone.status_code == 404, gone.text
        native = client.get(f"/v1/audio/transcriptions/{transcription_id}", headers=AUTH)
        assert native.status_code == 404, native.text
    assert stored_objects(s3_fleet, f"jobs/{transcription_id}/") == []


# --- OpenAI -------------------------------------------------------------------------


def _openai(fleet: RunningFleet, path: Path, **data: Any) -> httpx.Response:
    with path.open("rb") as f, httpx.Client(base_url=fleet.base_url, headers=AUTH, timeout=600) as client:
        return client.post(
            "/v1/audio/transcriptions", files={"file": (path.name, f, "audio/wav")}, data={"model": "whisper-1", **data}
        )


def test_openai_diarized_json_on_a_two_voice_conversation(s3_fleet: RunningFleet) -> None:
    response = _openai(s3_fleet, FIXTURES / "conversation_en.wav", response_format="diarized_json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "transcribe" and body["duration"] == pytest.approx(37.9, abs=0.1)
    segments = body["segments"]
    assert segments and all(s["type"] == "transcript.text.segment" and s["speaker"] for s in segments)
    assert len({s["speaker"] for s in segments}) == 2, segments
    assert all(s["start"] <= s["end"] for s in segments)
    assert wer(reference("conversation_en.txt"), " ".join(s["text"] for s in segments)) <= MAX_WER


def test_openai_include_logprobs(s3_fleet: RunningFleet) -> None:
    response = _openai(s3_fleet, SPEECH, response_format="json", **{"include[]": "logprobs"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert wer(reference("speech_en.txt"), body["text"]) <= MAX_WER
    logprobs = body["logprobs"]
    assert len(logprobs) >= 20 and all(lp["logprob"] is not None and lp["logprob"] <= 0 for lp in logprobs)
    assert any(lp["logprob"] < 0 for lp in logprobs), "the probabilities come from the model"
    assert all(bytes(lp["bytes"]).decode() == lp["token"] for lp in logprobs)
    assert " ".join(lp["token"].strip() for lp in logprobs).split() == body["text"].split()


# --- webhooks -----------------------------------------------------------------------


def test_native_standard_webhook_from_a_real_job(s3_fleet: RunningFleet) -> None:
    receiver = Receiver()
    receiver.start()
    try:
        with s3_fleet.client() as client:
            created = client.post("/v1/webhooks", json={"url": receiver.url, "events": ["job.completed"]})
            assert created.status_code == 201, created.text
            hook = created.json()
            try:
                job_id = submit(client, FIXTURES / "short_en.wav").json()["id"]
                deadline = time.monotonic() + 300
                while not (mine := [r for r in receiver.requests if job_id in r.body]):
                    assert time.monotonic() < deadline, f"no delivery for job {job_id}: {receiver.requests}"
                    time.sleep(0.2)
                [request] = mine
                payload = Webhook(hook["secret"]).verify(request.body, request.headers)
                with pytest.raises(Exception, match="signature"):
                    Webhook(hook["secret"]).verify(request.body.replace(job_id, job_id[::-1]), request.headers)
                assert payload["type"] == "job.completed" and payload["data"]["id"] == job_id
                transcript = client.get(payload["data"]["transcript_url"]).json()["transcript"]
                assert wer(reference("short_en.txt"), transcript["text"]) <= MAX_WER
            finally:
                client.delete(f"/v1/webhooks/{hook['id']}")
    finally:
        receiver.stop()


# --- storage and hostile files ------------------------------------------------------


def test_upload_over_the_s3_multipart_threshold(s3_fleet: RunningFleet, tmp_path: Path) -> None:
    audio, rate = read_wav(FIXTURES / "long_en.wav")
    audio = soxr.resample(audio, rate, 48_000)
    stereo = np.repeat(audio[:, None], 2, axis=1)  # 53.7 s at 48 kHz stereo: 10.3 MB, two 5 MiB parts
    big = tmp_path / "long_en_48k_stereo.wav"
    with wave.open(str(big), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(48_000)
        out.writeframes((np.clip(stereo, -1, 1) * 32767).astype("<i2").tobytes())
    assert big.stat().st_size > MULTIPART_THRESHOLD
    with s3_fleet.client() as client:
        job = wait_for(client, submit(client, big).json()["id"], timeout=300)
    assert job["status"] == "completed", job
    assert job["audio"]["duration"] == pytest.approx(len(audio) / 48_000, abs=0.05), job["audio"]
    assert wer(reference("long_en.txt"), job["transcript"]["text"]) <= MAX_WER, job["transcript"]["text"]
    bucket = s3_fleet.env["DALSTON_S3_BUCKET"]
    large = [o for o in stored_objects(s3_fleet, f"jobs/{job['id']}/") if o["Size"] > MULTIPART_THRESHOLD]
    assert large, stored_objects(s3_fleet, f"jobs/{job['id']}/")
    for obj in large:
        etag = s3(s3_fleet).head_object(Bucket=bucket, Key=obj["Key"])["ETag"]
        assert etag.strip('"').endswith("-2"), (obj["Key"], etag)  # a two-part multipart upload


def test_file_truncated_mid_stream_transcribes_what_it_holds(s3_fleet: RunningFleet, tmp_path: Path) -> None:
    """The header promises 53.7 s; the file holds the first half of the samples."""
    source = FIXTURES / "long_en.wav"
    data = source.read_bytes()
    with wave.open(str(source)) as w:
        frame_bytes = w.getsampwidth() * w.getnchannels()
        frames, rate = w.getnframes(), w.getframerate()
    header = len(data) - frames * frame_bytes
    cut = tmp_path / "truncated.wav"
    cut.write_bytes(data[: header + frames // 2 * frame_bytes])
    with s3_fleet.client() as client:
        response = submit(client, cut)
        assert response.status_code == 201, response.text
        job = wait_for(client, response.json()["id"], timeout=300)
    assert job["status"] == "completed", job
    held_s = frames // 2 / rate
    text = job["transcript"]["text"]
    words = job["transcript"]["words"]
    assert words and words[-1]["end"] <= held_s + 0.5, (held_s, words[-1])
    truth = reference("long_en.txt").split()
    said = len(text.split())
    # What it holds: the opening of the reference, about half of it, and nothing after.
    assert 0.3 * len(truth) <= said <= 0.7 * len(truth), (said, len(truth), text)
    assert wer(" ".join(truth[:said]), text) <= MAX_WER, text


# --- realtime close codes -----------------------------------------------------------


def _ws_url(fleet: RunningFleet, query: str = "language=en") -> str:
    return f"{fleet.base_url.replace('http', 'ws', 1)}/v1/audio/transcriptions/stream?{query}"


def _wait_for_realtime(fleet: RunningFleet) -> None:
    deadline = time.monotonic() + 180
    while True:
        status = httpx.get(f"{fleet.base_url}/v1/realtime/status", headers=AUTH, timeout=10).json()
        if any(w["status"] == "ready" for w in status.get("workers", [])):
            return
        assert time.monotonic() < deadline, f"no realtime worker became ready: {status}"
        time.sleep(0.5)


def _session_when_ended(fleet: RunningFleet, session_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    with fleet.client() as client:
        while (session := client.get(f"/v1/realtime/sessions/{session_id}").json())["status"] == "active":
            assert time.monotonic() < deadline, f"session {session_id} never ended: {session}"
            time.sleep(0.2)
    return session


def test_idle_realtime_session_closes_1008(s3_fleet: RunningFleet) -> None:
    _wait_for_realtime(s3_fleet)

    async def idle() -> tuple[list[dict[str, Any]], int | None]:
        async with websockets.connect(_ws_url(s3_fleet), additional_headers=AUTH) as ws:
            messages = [json.loads(await asyncio.wait_for(ws.recv(), 30))]
            assert messages[0]["type"] == "session.begin", messages
            # Send nothing: the worker ends the session after its idle timeout.
            try:
                async for raw in ws:
                    messages.append(json.loads(raw))
            except websockets.ConnectionClosed:
                pass
            return messages, ws.close_code

    messages, close_code = asyncio.run(asyncio.wait_for(idle(), IDLE_TIMEOUT_S + 120))
    assert close_code == 1008, messages
    assert messages[-1]["type"] == "error" and messages[-1]["code"] == "idle_timeout", messages
    session = _session_when_ended(s3_fleet, messages[0]["session_id"])
    assert session["status"] == "failed" and "idle_timeout" in (session["error"] or ""), session


def test_client_that_drops_without_end_frees_its_worker(s3_fleet: RunningFleet) -> None:
    _wait_for_realtime(s3_fleet)
    audio, rate = read_wav(FIXTURES / "short_en.wav")
    pcm = (np.clip(soxr.resample(audio, rate, 16_000), -1, 1) * 32767).astype("<i2").tobytes()

    async def drop() -> str:
        ws = await websockets.connect(_ws_url(s3_fleet), additional_headers=AUTH)
        begin = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert begin["type"] == "session.begin", begin
        for i in range(0, len(pcm), 3200):
            await ws.send(pcm[i : i + 3200])
            await asyncio.sleep(0.1)
        ws.transport.abort()  # gone: no `end`, not even a close frame
        return begin["session_id"]

    session_id = asyncio.run(drop())
    session = _session_when_ended(s3_fleet, session_id)
    assert session["status"] == "completed" and session["error"] is None, session
    assert 0 < session["audio_duration"] <= len(pcm) / 32_000 + 0.01, session
    deadline = time.monotonic() + 60
    while (status := httpx.get(f"{s3_fleet.base_url}/v1/realtime/status", headers=AUTH, timeout=10).json())["active_sessions"]:
        assert time.monotonic() < deadline, f"the dropped session still holds a slot: {status}"
        time.sleep(0.2)
    # The slot is usable again: a new session begins.

    async def again() -> dict[str, Any]:
        async with websockets.connect(_ws_url(s3_fleet), additional_headers=AUTH) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 30))
            await ws.send(json.dumps({"type": "end"}))
            return first

    assert asyncio.run(again())["type"] == "session.begin"
