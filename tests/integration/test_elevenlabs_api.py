"""ElevenLabs-compatible batch API against real PostgreSQL, Redis and a filesystem store (no engines).

Completed jobs are simulated the way the orchestrator finishes them: transcript in storage,
row updated, notification published.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update
from test_gateway_api import add_key, make_client, settings  # noqa: F401 - fixtures

from gateway.errors import ApiError
from gateway.services import Services
from shared import keys
from shared.catalogue import Stage
from shared.db import Job
from shared.transcript import Segment, Transcript, Word

ROOT = Path(__file__).resolve().parents[2]
SHORT_WAV = ROOT / "tests" / "fixtures" / "short_en.wav"
STEREO_WAV = ROOT / "tests" / "fixtures" / "stereo_en.wav"
URL = "/v1/speech-to-text"
CHUNK_KEYS = {"language_code", "language_probability", "text", "words"}

TRANSCRIPT = Transcript(
    text="hello world",
    language="en",
    language_probability=0.98,
    duration=2.7,
    segments=[
        Segment(
            id=0,
            start=0.1,
            end=1.0,
            text="hello world",
            words=[
                Word(text="hello", start=0.1, end=0.5, probability=0.9),
                Word(text="world", start=0.6, end=1.0, probability=0.8),
            ],
        )
    ],
    words=[Word(text="hello", start=0.1, end=0.5, probability=0.9), Word(text="world", start=0.6, end=1.0, probability=0.8)],
    model="tiny.en",
)


@pytest.fixture
async def api(make_client) -> tuple[httpx.AsyncClient, Services]:  # noqa: F811
    client, services = await make_client(allow_private_urls=True)
    client.headers["xi-api-key"] = await add_key(services, scopes=["jobs:read", "jobs:write", "webhooks", "realtime"])
    # webhook=true is refused unless the tenant has somewhere to deliver to.
    hook = await client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"})
    assert hook.status_code == 201, hook.text
    return client, services


def detail(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"detail"} and set(body["detail"]) == {"status", "message"}, body
    assert body["detail"]["status"] == code, body
    return body["detail"]["message"]


async def post(client: httpx.AsyncClient, path: Path | None = SHORT_WAV, *, params: dict | None = None, **data) -> httpx.Response:
    files = {"file": (path.name, path.read_bytes(), "audio/x-wav")} if path else None
    data.setdefault("model_id", "scribe_v1")
    # httpx sends a body without files as urlencoded; the SDK always sends multipart.
    if files is None:
        files = {"_": (None, "")}
    return await client.post(URL, files=files, data=data, params=params)


async def complete(services: Services, job_id: str, transcript: Transcript = TRANSCRIPT) -> None:
    key = f"jobs/{job_id}/transcript.json"
    await asyncio.to_thread(services.store.put_bytes, key, transcript.model_dump_json().encode())
    async with services.sessionmaker() as db, db.begin():
        await db.execute(
            update(Job)
            .where(Job.id == uuid.UUID(job_id))
            .values(status="completed", transcript_key=key, completed_at=datetime.now(UTC))
        )
    await services.redis.publish(keys.job_done_channel(job_id), json.dumps({"job_id": job_id, "status": "completed"}))


async def new_job(services: Services, since: datetime, request: asyncio.Task) -> Job:
    """The job a request in flight has created (the row appears once the upload is stored)."""
    for _ in range(400):
        if request.done():
            raise AssertionError(f"the request ended before its job was seen: {request.result().text}")
        async with services.sessionmaker() as db:
            job = await db.scalar(select(Job).where(Job.created_at > since).order_by(Job.created_at.desc()).limit(1))
        if job is not None:
            return job
        await asyncio.sleep(0.05)
    raise TimeoutError("no job was created")


async def job_row(services: Services, job_id: str) -> Job:
    async with services.sessionmaker() as db:
        return await db.get(Job, uuid.UUID(job_id))


# --- sync and webhook modes ---------------------------------------------------------------


async def test_sync_request_waits_for_the_job_and_returns_a_chunk(api) -> None:
    client, services = api
    since = datetime.now(UTC)
    response_task = asyncio.create_task(
        post(
            client,
            timestamps_granularity="character",
            additional_formats='[{"format":"srt"},{"format":"txt"}]',
            keyterms='["Dalston"]',
        )
    )
    job_id = (await new_job(services, since, response_task)).id
    job = await job_row(services, str(job_id))
    assert job.parameters["transcribe"] == {"hotwords": "Dalston"}
    await complete(services, str(job_id))
    response = await response_task
    assert response.status_code == 200, response.text
    body = response.json()
    assert CHUNK_KEYS <= set(body) and body["transcription_id"] == str(job_id)
    assert body["language_code"] == "eng" and body["text"] == "hello world" and body["audio_duration_secs"] == 2.7
    assert [w["type"] for w in body["words"]] == ["word", "spacing", "word"]
    assert [c["text"] for c in body["words"][0]["characters"]] == list("hello")
    srt, txt = body["additional_formats"]
    assert srt["requested_format"] == "srt" and "00:00:00,100 --> 00:00:01,000\nhello world" in srt["content"]
    assert txt["content"] == "[00:00:00.100 --> 00:00:01.000] hello world\n"  # txt defaults to include_timestamps


async def test_sync_timeout_points_to_webhook_mode(make_client) -> None:  # noqa: F811
    client, services = await make_client(elevenlabs_sync_timeout_s=0.5)
    client.headers["xi-api-key"] = await add_key(services)
    message = detail(await post(client), 400, "sync_timeout")
    assert "webhook=true" in message and "/v1/speech-to-text/transcripts/" in message


async def test_failed_job_is_a_clear_400(api) -> None:
    client, services = api
    since = datetime.now(UTC)
    task = asyncio.create_task(post(client))
    job = await new_job(services, since, task)
    async with services.sessionmaker() as db, db.begin():
        await db.execute(update(Job).where(Job.id == job.id).values(status="failed", error="engine exploded"))
    await services.redis.publish(keys.job_done_channel(str(job.id)), "{}")
    assert "engine exploded" in detail(await task, 400, "transcription_failed")


async def test_webhook_mode_acks_and_stores_options(api) -> None:
    client, services = api
    endpoint_id = (await client.get("/v1/webhooks")).json()["webhooks"][0]["id"]
    response = await post(
        client,
        webhook="true",
        webhook_id=endpoint_id,
        webhook_metadata='{"order": 7}',
        temperature="0.4",
        seed="12",
        keyterms=["Dalston", "Hackney"],
        additional_formats='[{"format":"pdf"}]',
        tag_audio_events="false",
        **{"keyterms[]": "Shoreditch"},
    )
    assert response.status_code == 200, response.text
    ack = response.json()
    assert set(ack) == {"message", "request_id", "transcription_id"} and not CHUNK_KEYS & set(ack)
    job = await job_row(services, ack["transcription_id"])
    assert job.model == "tiny.en" and job.status == "pending"
    assert job.parameters["transcribe"] == {"temperature": 0.4, "hotwords": "Dalston, Hackney, Shoreditch"}
    stored = job.parameters["elevenlabs"]
    assert stored["webhook"] is True and stored["webhook_id"] == endpoint_id and stored["webhook_metadata"] == {"order": 7}
    assert stored["request_id"] == ack["request_id"]
    assert stored["request_options"]["additional_formats"][0]["format"] == "pdf"

    # Later, GET renders the stored options.
    await complete(services, ack["transcription_id"])
    body = (await client.get(f"{URL}/transcripts/{ack['transcription_id']}")).json()
    assert body["additional_formats"][0]["content_type"] == "application/pdf"


async def test_sdk_259_null_fields_and_unknown_fields(api) -> None:
    client, services = api
    response = await post(
        client,
        webhook="True",
        keyterms="null",
        webhook_metadata="null",
        entity_detection="null",
        entity_redaction="null",
        biased_keywords='["x"]',
        diarize="FALSE",
    )
    assert response.status_code == 200, response.text
    job = await job_row(services, response.json()["transcription_id"])
    assert job.parameters["transcribe"] == {} and job.speaker_detection == "none"


async def test_multichannel_maps_to_per_channel(api) -> None:
    client, services = api
    stereo = (await post(client, STEREO_WAV, webhook="true", use_multi_channel="true")).json()
    assert (await job_row(services, stereo["transcription_id"])).speaker_detection == "per_channel"
    mono = (await post(client, webhook="true", use_multi_channel="true")).json()
    assert (await job_row(services, mono["transcription_id"])).speaker_detection == "none"
    await complete(services, mono["transcription_id"])
    body = (await client.get(f"{URL}/transcripts/{mono['transcription_id']}")).json()
    assert set(body) == {"transcripts", "transcription_id", "audio_duration_secs"}
    assert body["transcripts"][0]["channel_index"] == 0 and body["transcripts"][0]["text"] == "hello world"


async def test_diarize_maps_to_speaker_detection(api) -> None:
    """The default diarizer needs no weights setting: diarize=true must be accepted and
    mapped, never answered with feature_unavailable."""
    client, services = api
    response = await post(client, webhook="true", diarize="true", num_speakers="2")
    assert response.status_code == 200, response.text
    job = await job_row(services, response.json()["transcription_id"])
    assert job.speaker_detection == "diarize" and job.parameters["diarize"]["max_speakers"] == 2


async def test_diarize_without_a_configured_diarizer_is_refused_clearly(make_client) -> None:  # noqa: F811
    # A server whose diarize stage is an engine without its weights cannot diarize.
    client, services = await make_client(
        allow_private_urls=True, stage_engines={Stage.DIARIZE: "pyannote-4.0"}, pyannote_model=None
    )
    client.headers["xi-api-key"] = await add_key(services, scopes=["jobs:read", "jobs:write"])
    message = detail(await post(client, diarize="true"), 400, "feature_unavailable")
    assert "diarize" in message and "DALSTON_PYANNOTE_MODEL" in message


async def test_pcm_s16le_16_raw_audio(api, tmp_path: Path) -> None:
    client, services = api
    seconds = 1.5
    raw = tmp_path / "audio.raw"
    raw.write_bytes(b"\x00\x01" * int(16000 * seconds))
    job = await job_row(
        services, (await post(client, raw, webhook="true", file_format="pcm_s16le_16")).json()["transcription_id"]
    )
    assert job.audio_format == "wav" and job.audio_sample_rate == 16000 and job.audio_channels == 1
    assert job.audio_duration == pytest.approx(seconds)
    odd = tmp_path / "odd.raw"
    odd.write_bytes(b"\x00" * 3201)
    detail(await post(client, odd, webhook="true", file_format="pcm_s16le_16"), 400, "invalid_audio")


# --- URL sources ------------------------------------------------------------------------


@pytest.fixture
def media_server() -> Iterator[str]:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, directory=str(SHORT_WAV.parent), **kwargs)

        def do_GET(self) -> None:
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/short_en.wav")
                self.end_headers()
                return
            super().do_GET()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_source_url_is_fetched(api, media_server: str) -> None:
    client, services = api
    for field in ("source_url", "cloud_storage_url"):
        response = await post(client, None, webhook="true", **{field: f"{media_server}/redirect"})
        assert response.status_code == 200, response.text
        job = await job_row(services, response.json()["transcription_id"])
        assert job.audio_filename == "short_en.wav" and job.audio_duration == pytest.approx(2.735, abs=0.01)
    detail(await post(client, None, webhook="true", source_url=f"{media_server}/missing.wav"), 400, "source_url_unreachable")
    detail(await post(client, None, webhook="true", source_url="ftp://example.com/a.wav"), 422, "invalid_parameter")
    detail(await post(client, webhook="true", source_url=f"{media_server}/short_en.wav"), 422, "invalid_parameter")
    detail(await post(client, None, webhook="true"), 422, "invalid_parameter")


async def test_private_urls_are_refused_by_default(make_client, media_server: str) -> None:  # noqa: F811
    client, services = await make_client()
    client.headers["xi-api-key"] = await add_key(services)
    for url in (f"{media_server}/short_en.wav", "http://localhost:1/a.wav", "http://169.254.169.254/latest", "http://[::1]/a"):
        detail(await post(client, None, source_url=url), 400, "source_url_refused")


async def test_a_redirect_to_a_private_address_is_refused(media_server: str, tmp_path, monkeypatch) -> None:
    """Every hop is checked, not only the URL given: a public page that redirects to a private
    address is refused at the redirect. A public first hop cannot be served offline, so the
    local media server stands in for it: its check alone is let through."""
    from gateway.elevenlabs import media

    checked: list[str] = []
    guard = media.check_url

    async def public_first_hop(url, *, allow_private: bool):
        checked.append(str(url))
        return await guard(url, allow_private=allow_private or len(checked) == 1)

    monkeypatch.setattr(media, "check_url", public_first_hop)
    with pytest.raises(ApiError) as caught:
        await media.fetch_url(f"{media_server}/redirect", tmp_path, max_bytes=10**7, timeout=10, allow_private=False)
    assert (caught.value.status, caught.value.code) == (400, "source_url_refused")
    assert checked == [f"{media_server}/redirect", f"{media_server}/short_en.wav"]
    assert not (tmp_path / "download").exists()  # nothing was fetched from the private address


async def test_source_url_size_limit(make_client, media_server: str) -> None:  # noqa: F811
    client, services = await make_client(allow_private_urls=True, max_upload_bytes=1000)
    client.headers["xi-api-key"] = await add_key(services)
    detail(await post(client, None, source_url=f"{media_server}/short_en.wav"), 413, "file_too_large")


# --- errors, auth, tokens -----------------------------------------------------------------


async def test_errors_are_in_elevenlabs_shape(api) -> None:
    client, _ = api
    assert "model_id" in detail(await post(client, model_id=""), 422, "invalid_parameter")
    assert "unknown model" in detail(await post(client, model_id="scribe_v9"), 422, "unknown_model")
    detail(await post(client, timestamps_granularity="sentence"), 422, "invalid_parameter")
    assert "shoe_size" in detail(await post(client, entity_detection='"shoe_size"'), 422, "invalid_parameter")
    detail(await post(client, webhook="true", language_code="xx"), 422, "invalid_language")
    detail(await post(client, params={"enable_logging": "false"}, webhook="true"), 400, "feature_unavailable")
    bad = await client.post(URL, content=b"{}", headers={"content-type": "application/json"})
    detail(bad, 415, "invalid_content_type")
    detail(await client.get(f"{URL}/transcripts/{uuid.uuid4()}"), 404, "job_not_found")
    detail(await client.get(f"{URL}/transcripts/not-a-uuid"), 404, "job_not_found")


async def test_auth_headers(api) -> None:
    client, services = api
    key = client.headers.pop("xi-api-key")
    detail(await post(client), 401, "missing_api_key")
    detail(await post(client, webhook="true"), 401, "missing_api_key")
    client.headers["xi-api-key"] = ""  # empty means missing
    detail(await post(client), 401, "missing_api_key")
    client.headers["xi-api-key"] = "wrong"
    detail(await post(client), 401, "invalid_api_key")
    del client.headers["xi-api-key"]
    client.headers["Authorization"] = f"Bearer {key}"
    assert (await post(client, webhook="true")).status_code == 200


async def test_single_use_tokens(api) -> None:
    client, services = api
    batch = (await client.post("/v1/single-use-token/batch_scribe")).json()["token"]
    realtime = (await client.post("/v1/single-use-token/realtime_scribe")).json()["token"]
    detail(await client.post("/v1/single-use-token/tts_websocket"), 422, "invalid_parameter")
    key = client.headers.pop("xi-api-key")
    detail(await client.post("/v1/single-use-token/batch_scribe"), 401, "missing_api_key")

    response = await post(client, webhook="true", params={"token": batch})
    assert response.status_code == 200, response.text
    job = await job_row(services, response.json()["transcription_id"])
    assert job.status == "pending"
    assert "already used" in detail(await post(client, webhook="true", params={"token": batch}), 401, "invalid_token")
    assert "realtime_scribe" in detail(await post(client, webhook="true", params={"token": realtime}), 401, "invalid_token")
    ttl = await services.redis.ttl("dalston:token:" + hashlib.sha256(realtime.encode()).hexdigest())
    assert ttl == -2  # consumed even though the type was wrong: a token is good for one attempt
    client.headers["xi-api-key"] = key
    fresh = (await client.post("/v1/single-use-token/realtime_scribe")).json()["token"]
    assert 0 < await services.redis.ttl("dalston:token:" + hashlib.sha256(fresh.encode()).hexdigest()) <= 900


# --- transcripts get/delete -----------------------------------------------------------------


async def test_get_and_delete_transcripts(api, make_client) -> None:  # noqa: F811
    client, services = api
    job_id = (await post(client, webhook="true")).json()["transcription_id"]
    assert "pending" in detail(await client.get(f"{URL}/transcripts/{job_id}"), 404, "transcript_not_ready")
    detail(await client.delete(f"{URL}/transcripts/{job_id}"), 400, "job_not_terminal")  # not 409: SDKs retry 409

    other_client, other_services = await make_client()
    other_client.headers["xi-api-key"] = await add_key(other_services)
    await complete(services, job_id)
    detail(await other_client.get(f"{URL}/transcripts/{job_id}"), 404, "job_not_found")
    detail(await other_client.delete(f"{URL}/transcripts/{job_id}"), 404, "job_not_found")

    body = (await client.get(f"{URL}/transcripts/{job_id}")).json()
    assert CHUNK_KEYS <= set(body) and body["transcription_id"] == job_id
    deleted = await client.delete(f"{URL}/transcripts/{job_id}")
    assert deleted.status_code == 200 and deleted.json()["transcription_id"] == job_id
    detail(await client.get(f"{URL}/transcripts/{job_id}"), 404, "job_not_found")
    assert not await asyncio.to_thread(services.store.exists, f"jobs/{job_id}/transcript.json")


async def test_zero_retention_deletes_after_the_response(api) -> None:
    client, services = api
    since = datetime.now(UTC)
    task = asyncio.create_task(post(client, params={"enable_logging": "false"}))
    job_id = str((await new_job(services, since, task)).id)
    await complete(services, job_id)
    response = await task
    assert response.status_code == 200 and response.json()["text"] == "hello world"
    assert await job_row(services, job_id) is None
