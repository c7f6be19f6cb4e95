"""Job page actions against real PostgreSQL, Redis and object storage (filesystem and S3):
docx/pdf exports, speaker names (PUT .../speakers) and re-runs (POST .../rerun).

A completed job is made the way the orchestrator leaves one: a transcript object in
storage, the row's status and transcript_key set.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from docx import Document
from pypdf import PdfReader
from sqlalchemy import select

from gateway.app import create_app
from gateway.services import Services
from shared import keys
from shared.bootstrap import generate_key, hash_key
from shared.db import ApiKey, AuditEvent, Job, Tenant
from shared.settings import Settings
from shared.storage import ObjectNotFound, S3Store
from shared.transcript import Segment, Transcript, Word

ROOT = Path(__file__).resolve().parents[2]
SHORT_WAV = ROOT / "tests" / "fixtures" / "short_en.wav"
URL = "/v1/audio/transcriptions"


@pytest.fixture
async def gateway(database_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    settings = Settings(database_url=database_url, redis_url=redis_url, data_dir=tmp_path, storage_backend="fs")
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    services: Services = app.state.services
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
    client.headers["Authorization"] = f"Bearer {await add_key(services, f'tenant-{uuid.uuid4().hex[:8]}')}"
    try:
        yield client, services
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)


async def add_key(services: Services, tenant: str, scopes: list[str] | None = None) -> str:
    key = generate_key()
    async with services.sessionmaker() as db, db.begin():
        row = await db.scalar(select(Tenant).where(Tenant.name == tenant))
        if row is None:
            row = Tenant(name=tenant)
            db.add(row)
            await db.flush()
        db.add(
            ApiKey(
                tenant_id=row.id,
                name="test",
                prefix=key[:10],
                key_hash=hash_key(key),
                scopes=scopes or ["jobs:read", "jobs:write"],
            )
        )
    return key


def conversation() -> Transcript:
    words = [
        Word(text="Good", start=0.1, end=0.4, speaker="speaker_0"),
        Word(text="morning.", start=0.4, end=0.9, speaker="speaker_0"),
        Word(text="Hello", start=1.2, end=1.5, speaker="speaker_1"),
        Word(text="there.", start=1.5, end=1.9, speaker="speaker_1"),
    ]
    return Transcript(
        text="Good morning. Hello there.",
        language="en",
        language_probability=0.97,
        duration=2.0,
        segments=[
            Segment(id=0, start=0.1, end=0.9, text="Good morning.", words=words[:2], speaker="speaker_0", avg_logprob=-0.2),
            Segment(id=1, start=1.2, end=1.9, text="Hello there.", words=words[2:], speaker="speaker_1", avg_logprob=-0.4),
        ],
        words=words,
        speakers=["speaker_0", "speaker_1"],
        model="tiny.en",
    )


async def submit(client: httpx.AsyncClient, **data: str) -> dict:
    response = await client.post(URL, files={"file": ("short.wav", SHORT_WAV.read_bytes(), "audio/wav")}, data=data)
    assert response.status_code == 201, response.text
    return response.json()


async def complete(services: Services, job_id: str, transcript: Transcript | None = None) -> None:
    """Finish the job as the orchestrator would: transcript stored, row completed."""
    key = f"jobs/{job_id}/transcript.json"
    services.store.put_bytes(key, (transcript or conversation()).model_dump_json().encode())
    async with services.sessionmaker() as db, db.begin():
        job = await db.get(Job, uuid.UUID(job_id))
        assert job is not None
        now = datetime.now(UTC)
        job.status, job.started_at, job.completed_at, job.transcript_key = "completed", now, now, key


async def completed_job(client: httpx.AsyncClient, services: Services, **data: str) -> str:
    job_id = (await submit(client, **data))["id"]
    await complete(services, job_id)
    return job_id


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    return error["message"]


async def audit_actions(services: Services, job_id: str) -> list[AuditEvent]:
    async with services.sessionmaker() as db:
        return list(await db.scalars(select(AuditEvent).where(AuditEvent.resource_id == job_id).order_by(AuditEvent.id)))


# --- docx and pdf ---------------------------------------------------------------------


async def test_docx_and_pdf_exports(gateway) -> None:
    client, services = gateway
    job_id = await completed_job(client, services)

    docx = await client.get(f"{URL}/{job_id}/export/docx")
    assert docx.status_code == 200, docx.text
    assert docx.headers["content-type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert f'filename="transcript-{job_id}.docx"' in docx.headers["content-disposition"]
    text = "\n".join(p.text for p in Document(io.BytesIO(docx.content)).paragraphs)
    assert "Good morning." in text and "Hello there." in text and "speaker_1:" in text
    assert "00:00:01.200" in text  # documents carry timestamps unless asked not to

    pdf = await client.get(f"{URL}/{job_id}/export/pdf", params={"include_timestamps": "false", "include_speakers": "false"})
    assert pdf.status_code == 200, pdf.text
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    extracted = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Good morning." in extracted and "Hello there." in extracted
    assert "speaker_0" not in extracted and "00:00" not in extracted

    assert [e.details["format"] for e in await audit_actions(services, job_id)] == ["docx", "pdf"]
    assert_error(await client.get(f"{URL}/{job_id}/export/odt"), 400, "invalid_format")


# --- speaker names ----------------------------------------------------------------------


async def test_renamed_speakers_show_in_every_reader(gateway) -> None:
    client, services = gateway
    job_id = await completed_job(client, services)

    renamed = await client.put(f"{URL}/{job_id}/speakers", json={"names": {"speaker_0": "  Margaret\tThatcher "}})
    assert renamed.status_code == 200, renamed.text
    detail = renamed.json()
    assert detail["speaker_names"] == {"speaker_0": "Margaret Thatcher"}
    assert detail["transcript"]["speakers"] == ["Margaret Thatcher", "speaker_1"]
    assert [s["speaker"] for s in detail["transcript"]["segments"]] == ["Margaret Thatcher", "speaker_1"]
    assert [w["speaker"] for w in detail["transcript"]["words"]][:2] == ["Margaret Thatcher"] * 2
    assert (await client.get(f"{URL}/{job_id}")).json() == detail

    # Names are merged: renaming the other speaker keeps the first name.
    second = await client.put(f"{URL}/{job_id}/speakers", json={"names": {"speaker_1": "Bob"}})
    assert second.json()["speaker_names"] == {"speaker_0": "Margaret Thatcher", "speaker_1": "Bob"}

    txt = (await client.get(f"{URL}/{job_id}/export/txt")).text
    assert "Margaret Thatcher: Good morning." in txt and "Bob: Hello there." in txt
    srt = (await client.get(f"{URL}/{job_id}/export/srt")).text
    assert "Margaret Thatcher" in srt and "speaker_0" not in srt
    docx = await client.get(f"{URL}/{job_id}/export/docx")
    assert "Bob:" in "\n".join(p.text for p in Document(io.BytesIO(docx.content)).paragraphs)
    # ElevenLabs' wire format numbers speakers itself (speaker_0, ...): its clients keep ids.
    elevenlabs = (await client.get(f"/v1/speech-to-text/transcripts/{job_id}")).json()
    assert {w.get("speaker_id") for w in elevenlabs["words"] if w.get("type") == "word"} == {"speaker_0", "speaker_1"}

    # null resets a name; the stored transcript never changed, so the id comes back.
    reset = await client.put(f"{URL}/{job_id}/speakers", json={"names": {"speaker_0": None}})
    assert reset.json()["speaker_names"] == {"speaker_1": "Bob"}
    assert reset.json()["transcript"]["speakers"] == ["speaker_0", "Bob"]
    stored = Transcript.model_validate_json(services.store.get_bytes(f"jobs/{job_id}/transcript.json"))
    assert stored.speakers == ["speaker_0", "speaker_1"]

    events = [e for e in await audit_actions(services, job_id) if e.action == "job.speakers_renamed"]
    assert [e.details["names"] for e in events] == [
        {"speaker_0": "  Margaret\tThatcher "},
        {"speaker_1": "Bob"},
        {"speaker_0": None},
    ]


async def test_rename_refusals(gateway, database_url: str) -> None:
    client, services = gateway
    job_id = await completed_job(client, services)
    path = f"{URL}/{job_id}/speakers"

    assert "speaker_0, speaker_1" in assert_error(
        await client.put(path, json={"names": {"speaker_7": "X"}}), 400, "unknown_speaker"
    )
    assert_error(await client.put(path, json={"names": {"speaker_0": "   "}}), 400, "invalid_parameter")
    assert_error(await client.put(path, json={"names": {"speaker_0": "x" * 65}}), 400, "invalid_parameter")
    assert_error(await client.put(path, json={"names": {}}), 400, "invalid_parameter")
    assert_error(await client.put(path, json={"names": {"speaker_0": "Ann", "speaker_1": "Ann"}}), 400, "duplicate_speaker_name")
    assert_error(await client.put(path, json={"names": {"speaker_0": "speaker_1"}}), 400, "duplicate_speaker_name")
    assert (await client.put(path, json={"names": "Ann"})).status_code == 400
    # Nothing of the refused requests was stored.
    assert (await client.get(f"{URL}/{job_id}")).json()["speaker_names"] == {}

    assert_error(await client.put(f"{URL}/{uuid.uuid4()}/speakers", json={"names": {"speaker_0": "A"}}), 404, "job_not_found")
    pending = (await submit(client))["id"]
    assert_error(await client.put(f"{URL}/{pending}/speakers", json={"names": {"speaker_0": "A"}}), 409, "job_not_completed")

    reader = await add_key(services, f"reader-{uuid.uuid4().hex[:8]}", ["jobs:read"])
    refused = await client.put(path, json={"names": {"speaker_0": "A"}}, headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403, refused.text


async def test_job_without_speakers_has_none_to_name(gateway) -> None:
    client, services = gateway
    job_id = (await submit(client))["id"]
    plain = conversation().model_copy(
        update={"speakers": [], "words": [], "segments": [Segment(id=0, start=0, end=1, text="hi")]}
    )
    await complete(services, job_id, plain)
    message = assert_error(
        await client.put(f"{URL}/{job_id}/speakers", json={"names": {"speaker_0": "A"}}), 400, "unknown_speaker"
    )
    assert "without speaker detection" in message


# --- re-run -----------------------------------------------------------------------------


async def test_rerun_copies_the_audio_and_the_options(gateway) -> None:
    client, services = gateway
    source = await submit(client, language="en", pipeline="integrated")
    source_id = source["id"]
    await complete(services, source_id)
    await client.put(f"{URL}/{source_id}/speakers", json={"names": {"speaker_0": "Margaret"}})
    async with services.sessionmaker() as db:
        before = await db.get(Job, uuid.UUID(source_id))
        assert before is not None
        source_row = {c: getattr(before, c) for c in ("model", "language", "speaker_detection", "audio_key", "audio_bytes")}
        source_parameters = dict(before.parameters)

    response = await client.post(f"{URL}/{source_id}/rerun")
    assert response.status_code == 201, response.text
    rerun = response.json()
    assert rerun["id"] != source_id and rerun["status"] == "pending" and rerun["transcript"] is None
    assert (rerun["model"], rerun["language"], rerun["speaker_detection"]) == (
        source_row["model"],
        "en",
        source_row["speaker_detection"],
    )
    assert rerun["audio"] == source["audio"]

    async with services.sessionmaker() as db:
        job = await db.get(Job, uuid.UUID(rerun["id"]))
        assert job is not None
        assert job.audio_key == f"jobs/{rerun['id']}/audio/original.wav"
        assert job.parameters == {k: v for k, v in source_parameters.items() if k != "speaker_names"}
        assert "speaker_names" in source_parameters and "engines" in source_parameters
    assert services.store.get_bytes(job.audio_key) == SHORT_WAV.read_bytes()
    assert services.store.get_bytes(str(source_row["audio_key"])) == SHORT_WAV.read_bytes()  # the source keeps its audio
    # The new job is announced like an upload, for the orchestrator.
    events = [json.loads(fields["data"]) for _, fields in await services.redis.xrange(keys.EVENTS_STREAM)]
    assert {"type": "job.created", "job_id": rerun["id"]}.items() <= next(e for e in events if e["job_id"] == rerun["id"]).items()

    audited = [e for e in await audit_actions(services, rerun["id"]) if e.action == "job.rerun"]
    assert [e.details for e in audited] == [{"source_job_id": source_id}]
    # Any terminal status can be re-run, a re-run included once it has finished.
    async with services.sessionmaker() as db, db.begin():
        row = await db.get(Job, uuid.UUID(rerun["id"]))
        assert row is not None
        row.status = "failed"
    assert (await client.post(f"{URL}/{rerun['id']}/rerun")).status_code == 201


async def test_rerun_refusals(gateway) -> None:
    client, services = gateway
    pending = (await submit(client))["id"]
    assert_error(await client.post(f"{URL}/{pending}/rerun"), 409, "job_not_terminal")
    assert_error(await client.post(f"{URL}/{uuid.uuid4()}/rerun"), 404, "job_not_found")

    # Audio gone (retention, a cleanup) while the row remains: a clear 404, no new job.
    job_id = await completed_job(client, services)
    async with services.sessionmaker() as db:
        job = await db.get(Job, uuid.UUID(job_id))
        assert job is not None
        services.store.delete_prefix(f"jobs/{job_id}/audio/")
    message = assert_error(await client.post(f"{URL}/{job_id}/rerun"), 404, "audio_not_found")
    assert "no longer stored" in message
    listed = (await client.get(URL, params={"limit": 100})).json()["jobs"]
    assert len(listed) == 2

    # A deleted job is simply unknown.
    await client.post(f"{URL}/{pending}/cancel")
    assert (await client.delete(f"{URL}/{pending}")).status_code == 204
    assert_error(await client.post(f"{URL}/{pending}/rerun"), 404, "job_not_found")

    reader = await add_key(services, f"reader-{uuid.uuid4().hex[:8]}", ["jobs:read"])
    refused = await client.post(f"{URL}/{job_id}/rerun", headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403, refused.text


async def test_s3_copy_is_server_side_and_reports_missing(s3_env: dict[str, str], tmp_path: Path) -> None:
    store = S3Store(
        Settings(
            data_dir=tmp_path,
            storage_backend="s3",
            s3_endpoint_url=s3_env["DALSTON_S3_ENDPOINT_URL"],
            s3_bucket=s3_env["DALSTON_S3_BUCKET"],
            s3_access_key_id="test",
            s3_secret_access_key="test",
        )
    )
    store.ensure_bucket()
    store.put_bytes("jobs/a/audio/original.wav", b"RIFF....")
    store.copy("jobs/a/audio/original.wav", "jobs/b/audio/original.wav")
    assert store.get_bytes("jobs/b/audio/original.wav") == b"RIFF...."
    with pytest.raises(ObjectNotFound):
        store.copy("jobs/missing/audio/original.wav", "jobs/c/audio/original.wav")
