"""The speaker library API against real PostgreSQL, Redis and a filesystem store, without
engines: an enrollment's internal job is finished by the test with a diarize output as the
diarizer writes it (tests/e2e/test_known_speakers.py runs the real diarizer). Listing,
reading and deleting voices per tenant; the enrollment job's life (hidden, announced to
nobody, deleted); refusals of bad samples; `known_speakers` and `use_speaker_library` on
submission (tenant-scoped voiceprints in the job, clear 400s)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select, update
from test_elevenlabs_api import complete, detail, post
from test_gateway_api import SHORT_WAV, URL, add_key, assert_error, make_client, settings, submit  # noqa: F401 - fixtures

from gateway.services import Services
from shared import keys
from shared.contracts import DiarizeOutput, JobParameters, JobPurpose, SpeakerTurn, Voiceprint
from shared.db import Job, Speaker, Tenant, WebhookEndpoint
from shared.transcript import Segment, SpeakerMatch, Transcript, Word
from shared.webhooks import enqueue_deliveries

SPEAKERS = "/v1/speakers"


def voice(seed: int) -> list[float]:
    import numpy as np

    v = np.random.default_rng(seed).normal(size=256)
    return [float(x) for x in v / np.linalg.norm(v)]


async def tenant_client(make_client) -> tuple[httpx.AsyncClient, Services, uuid.UUID]:  # noqa: F811
    client, services = await make_client()
    key = await add_key(services)
    client.headers["Authorization"] = f"Bearer {key}"
    me = (await client.get("/v1/me")).json()
    return client, services, uuid.UUID(me["tenant"]["id"])


async def add_speaker(services: Services, tenant_id: uuid.UUID, name: str, seed: int) -> str:
    async with services.sessionmaker() as db, db.begin():
        row = Speaker(
            tenant_id=tenant_id,
            name=name,
            embedding=voice(seed),
            encoder="resemblyzer",
            sample_seconds=10.0,
            speech_seconds=9.0,
        )
        db.add(row)
        await db.flush()
        return str(row.id)


def enroll(client: httpx.AsyncClient, name: str = "Ada", **data: str) -> Awaitable[httpx.Response]:
    files = {"file": (SHORT_WAV.name, SHORT_WAV.read_bytes(), "audio/x-wav")}
    return client.post(SPEAKERS, files=files, data={"name": name, **data})


async def enrollment_job(services: Services, since: datetime, request: asyncio.Task) -> Job:
    for _ in range(400):
        if request.done():
            raise AssertionError(f"the request ended before its job was seen: {request.result().text}")
        async with services.sessionmaker() as db:
            job = await db.scalar(select(Job).where(Job.created_at > since, Job.purpose == JobPurpose.ENROLLMENT.value))
        if job is not None:
            return job
        await asyncio.sleep(0.05)
    raise TimeoutError("no enrollment job was created")


async def diarized(services: Services, job: Job, output: DiarizeOutput) -> None:
    """Finish the enrollment job as the orchestrator would after the diarizer wrote `output`."""
    key = keys.task_output(keys.task_prefix(job.id, "diarize"))
    await asyncio.to_thread(services.store.put_bytes, key, output.model_dump_json().encode())
    async with services.sessionmaker() as db, db.begin():
        await db.execute(
            update(Job).where(Job.id == job.id).values(status="completed", transcript_key=key, completed_at=datetime.now(UTC))
        )
    await services.redis.publish(keys.job_done_channel(str(job.id)), "{}")


def output(*speakers: tuple[str, float]) -> DiarizeOutput:
    turns, t = [], 0.0
    for speaker, seconds in speakers:
        turns.append(SpeakerTurn(speaker=speaker, start=t, end=t + seconds))
        t += seconds + 0.5
    prints = {s: Voiceprint(embedding=voice(i), encoder="resemblyzer", speech_seconds=sec) for i, (s, sec) in enumerate(speakers)}
    return DiarizeOutput(turns=turns, num_speakers=len(prints), duration=t, voiceprints=prints)


async def test_enrollment_runs_a_hidden_job_and_stores_the_longest_voice(make_client) -> None:  # noqa: F811
    client, services, tenant_id = await tenant_client(make_client)
    async with services.sessionmaker() as db, db.begin():
        db.add(
            WebhookEndpoint(tenant_id=tenant_id, url="https://hooks.example.com/x", events=["job.completed"], secret="whsec_x")
        )
    since = datetime.now(UTC)
    request = asyncio.create_task(enroll(client, "  Ada   Lovelace ", keep_audio="true"))
    job = await enrollment_job(services, since, request)
    # Never one of the tenant's transcriptions: not listed, not served, announced to nobody.
    assert job.tenant_id == tenant_id and job.speaker_detection == "diarize"
    assert str(job.id) not in (await client.get(URL)).text
    assert_error(await client.get(f"{URL}/{job.id}"), 404, "job_not_found")
    async with services.sessionmaker() as db, db.begin():
        assert await enqueue_deliveries(db, await db.get(Job, job.id)) == 0

    await diarized(services, job, output(("speaker_0", 2.5), ("speaker_1", 6.0)))
    response = await request
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "Ada Lovelace" and body["speech_seconds"] == 6.0 and body["audio_kept"] is True
    assert body["voices_in_sample"] == 2 and "2 voices" in body["warnings"][0]
    async with services.sessionmaker() as db:
        row = await db.get(Speaker, uuid.UUID(body["id"]))
        assert row is not None and row.embedding == pytest.approx(voice(1)) and row.encoder == "resemblyzer"
        assert await db.get(Job, job.id) is None  # the internal job is gone ...
    assert not await asyncio.to_thread(services.store.exists, job.audio_key)  # ... with what it stored
    sample = await client.get(f"{SPEAKERS}/{body['id']}/audio")
    assert sample.status_code == 200 and sample.content == SHORT_WAV.read_bytes()

    # The name is the speaker's label: one per tenant.
    assert_error(await enroll(client, "Ada Lovelace"), 409, "speaker_name_taken")
    # Deleting removes the voice and its sample.
    assert (await client.delete(f"{SPEAKERS}/{body['id']}")).status_code == 204
    assert_error(await client.get(f"{SPEAKERS}/{body['id']}"), 404, "speaker_not_found")
    assert not await asyncio.to_thread(services.store.exists, row.audio_key)


@pytest.mark.parametrize(
    ("result", "status", "code"),
    [
        (DiarizeOutput(turns=[], num_speakers=0, duration=3.0), 400, "no_speech"),
        (output(("speaker_0", 1.2)), 400, "sample_too_short"),
    ],
    ids=["no speech", "too little speech"],
)
async def test_unusable_samples_are_refused_and_leave_nothing(make_client, result, status, code) -> None:  # noqa: F811
    client, services, _ = await tenant_client(make_client)
    since = datetime.now(UTC)
    request = asyncio.create_task(enroll(client))
    job = await enrollment_job(services, since, request)
    await diarized(services, job, result)
    assert_error(await request, status, code)
    async with services.sessionmaker() as db:
        assert await db.get(Job, job.id) is None
        assert (await db.scalars(select(Speaker).where(Speaker.name == "Ada"))).first() is None


async def test_a_sample_the_diarizer_cannot_finish_in_time_is_a_clear_error(make_client) -> None:  # noqa: F811
    client, services = await make_client(speaker_enroll_timeout_s=0.5)
    client.headers["Authorization"] = f"Bearer {await add_key(services)}"
    response = await enroll(client)
    assert_error(response, 503, "enrollment_timeout")
    async with services.sessionmaker() as db:
        assert (await db.scalars(select(Job).where(Job.purpose == JobPurpose.ENROLLMENT.value))).first() is None


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"name": ""}, "invalid_parameter"),
        ({"name": "x" * 65}, "invalid_parameter"),
        ({"name": "speaker_1"}, "invalid_parameter"),
        ({"name": "A\x00da"}, "invalid_parameter"),
        ({"name": "Ada", "keep_audio": "maybe"}, "invalid_parameter"),
    ],
)
async def test_bad_enrollment_requests(make_client, data: dict, code: str) -> None:  # noqa: F811
    client, _, _ = await tenant_client(make_client)
    files = {"file": (SHORT_WAV.name, SHORT_WAV.read_bytes(), "audio/x-wav")}
    assert_error(await client.post(SPEAKERS, files=files, data=data), 400, code)
    assert_error(await client.post(SPEAKERS, files={"_": (None, "")}, data={"name": "Ada"}), 400, "missing_file")


async def test_the_library_is_per_tenant_listed_newest_first(make_client) -> None:  # noqa: F811
    client, services, mine = await tenant_client(make_client)
    other, _, theirs = await tenant_client(make_client)
    ids = [await add_speaker(services, mine, name, seed) for seed, name in enumerate(["Ada", "Ben", "Cy"])]
    foreign = await add_speaker(services, theirs, "Mallory", 9)

    first = (await client.get(SPEAKERS, params={"limit": 2})).json()
    assert [s["name"] for s in first["speakers"]] == ["Cy", "Ben"] and first["has_more"]
    rest = (await client.get(SPEAKERS, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [s["name"] for s in rest["speakers"]] == ["Ada"] and not rest["has_more"]
    assert "embedding" not in rest["speakers"][0]
    assert (await client.get(f"{SPEAKERS}/{ids[0]}")).json()["name"] == "Ada"
    assert_error(await client.get(f"{SPEAKERS}/{ids[0]}/audio"), 404, "audio_not_found")

    for path in (f"{SPEAKERS}/{foreign}", f"{SPEAKERS}/{uuid.uuid4()}", f"{SPEAKERS}/not-an-id"):
        assert_error(await client.get(path), 404, "speaker_not_found")
        assert_error(await client.delete(path), 404, "speaker_not_found")
    assert [s["name"] for s in (await other.get(SPEAKERS)).json()["speakers"]] == ["Mallory"]


async def test_known_speakers_put_the_tenants_voiceprints_into_the_job(make_client) -> None:  # noqa: F811
    client, services, mine = await tenant_client(make_client)
    _, _, theirs = await tenant_client(make_client)
    ada, ben = await add_speaker(services, mine, "Ada", 1), await add_speaker(services, mine, "Ben", 2)
    mallory = await add_speaker(services, theirs, "Mallory", 3)

    async def known_in(response: httpx.Response) -> list[str]:
        assert response.status_code == 201, response.text
        async with services.sessionmaker() as db:
            job = await db.get(Job, uuid.UUID(response.json()["id"]))
        return [k.name for k in JobParameters.model_validate(job.parameters).diarize.known_speakers]

    assert await known_in(await submit(client, speaker_detection="diarize", known_speakers="all")) == ["Ada", "Ben"]
    assert await known_in(await submit(client, speaker_detection="diarize", known_speakers=f" {ben} ")) == ["Ben"]
    both = await client.post(
        URL,
        files={"file": (SHORT_WAV.name, SHORT_WAV.read_bytes())},
        data={"speaker_detection": "diarize", "known_speakers": [ada, ben], "num_speakers": "2"},
    )
    assert await known_in(both) == ["Ada", "Ben"]

    for value in (mallory, str(uuid.uuid4()), "nobody", f"{ada},{mallory}"):
        response = await submit(client, speaker_detection="diarize", known_speakers=value)
        assert "speaker library" in assert_error(response, 400, "unknown_speaker")["message"]
    response = await submit(client, known_speakers=ada)
    assert "speaker_detection=diarize" in assert_error(response, 400, "invalid_parameter")["message"]


async def test_known_speakers_need_a_diarizer_that_makes_voiceprints(make_client) -> None:  # noqa: F811
    client, services = await make_client(pyannote_model="/models/pyannote")
    client.headers["Authorization"] = f"Bearer {await add_key(services)}"
    response = await submit(client, speaker_detection="diarize", diarizer="pyannote-4.0", known_speakers="all")
    assert "voiceprints" in assert_error(response, 400, "invalid_parameter")["message"]
    response = await submit(client, speaker_detection="diarize", pipeline="integrated", known_speakers="all")
    assert "whisperx-full does not" in assert_error(response, 400, "invalid_parameter")["message"]


def _matched_transcript() -> Transcript:
    words = [
        Word(text="hello", start=0.0, end=0.4, speaker="speaker_0"),
        Word(text="hi", start=1.0, end=1.3, speaker="speaker_1"),
    ]
    segments = [Segment(id=i, start=w.start, end=w.end, text=w.text, words=[w], speaker=w.speaker) for i, w in enumerate(words)]
    return Transcript(
        text="hello hi",
        language="en",
        language_probability=0.99,
        duration=1.5,
        segments=segments,
        words=words,
        speakers=["speaker_0", "speaker_1"],
        model="tiny.en",
        speaker_names={"speaker_1": "Ada"},
        known_speakers={"speaker_1": SpeakerMatch(id="x", name="Ada", similarity=0.91)},
    )


async def test_elevenlabs_use_speaker_library_matches_the_whole_library(make_client) -> None:  # noqa: F811
    client, services, mine = await tenant_client(make_client)
    client.headers["xi-api-key"] = client.headers.pop("Authorization").removeprefix("Bearer ")
    await add_speaker(services, mine, "Ada", 1)
    message = detail(await post(client, use_speaker_library="true"), 422, "invalid_parameter")
    assert "diarize=true" in message

    since = datetime.now(UTC)
    request = asyncio.create_task(post(client, diarize="true", use_speaker_library="true"))
    for _ in range(400):
        async with services.sessionmaker() as db:
            job = await db.scalar(select(Job).where(Job.created_at > since, Job.tenant_id == mine))
        if job is not None or request.done():
            break
        await asyncio.sleep(0.05)
    assert job is not None, request.result().text if request.done() else "no job"
    parameters = JobParameters.model_validate(job.parameters)
    assert [k.name for k in parameters.diarize.known_speakers] == ["Ada"]
    assert parameters.elevenlabs is not None and parameters.elevenlabs.request_options.use_speaker_library
    await complete(services, str(job.id), _matched_transcript())
    response = await request
    assert response.status_code == 200, response.text
    assert [w["speaker_id"] for w in response.json()["words"] if w["type"] == "word"] == ["speaker_0", "Ada"]
    # The native job detail and exports use the same label.
    job_detail = (await client.get(f"{URL}/{job.id}")).json()
    assert job_detail["transcript"]["speakers"] == ["speaker_0", "Ada"]
    assert job_detail["transcript"]["known_speakers"]["Ada"]["name"] == "Ada"
    assert job_detail["speaker_names"] == {"speaker_1": "Ada"}  # which id the label stands for
    # The user's name wins, and the enrolled one comes back when it is removed.
    renamed = await client.put(f"{URL}/{job.id}/speakers", json={"names": {"speaker_1": "Dr Lovelace"}})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["transcript"]["speakers"] == ["speaker_0", "Dr Lovelace"]
    reset = await client.put(f"{URL}/{job.id}/speakers", json={"names": {"speaker_1": None}})
    assert reset.json()["transcript"]["speakers"] == ["speaker_0", "Ada"]
    # Another speaker cannot take the enrolled name: labels must tell speakers apart.
    clash = await client.put(f"{URL}/{job.id}/speakers", json={"names": {"speaker_0": "Ada"}})
    assert_error(clash, 400, "duplicate_speaker_name")
    srt = await client.get(f"{URL}/{job.id}/export/srt")
    assert srt.status_code == 200 and "Ada" in srt.text


async def test_deleting_a_tenant_deletes_its_voices(make_client) -> None:  # noqa: F811
    _, services, mine = await tenant_client(make_client)
    speaker = await add_speaker(services, mine, "Ada", 1)
    async with services.sessionmaker() as db, db.begin():
        await db.delete(await db.get(Tenant, mine))
    async with services.sessionmaker() as db:
        assert await db.get(Speaker, uuid.UUID(speaker)) is None


async def test_a_rerun_uses_the_library_as_it_is_now(make_client) -> None:  # noqa: F811
    client, services, mine = await tenant_client(make_client)
    await add_speaker(services, mine, "Ada", 1)
    ben = await add_speaker(services, mine, "Ben", 2)
    created = await submit(client, speaker_detection="diarize", known_speakers="all")
    assert created.status_code == 201, created.text
    await complete(services, created.json()["id"], _matched_transcript())
    assert (await client.delete(f"{SPEAKERS}/{ben}")).status_code == 204
    rerun = await client.post(f"{URL}/{created.json()['id']}/rerun")
    assert rerun.status_code == 201, rerun.text
    async with services.sessionmaker() as db:
        job = await db.get(Job, uuid.UUID(rerun.json()["id"]))
    assert [k.name for k in JobParameters.model_validate(job.parameters).diarize.known_speakers] == ["Ada"]
