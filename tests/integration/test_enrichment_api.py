"""Enrichment options (PII detection and redaction, LLM cleanup, emotions, audio events) on the native and the
ElevenLabs batch API, against real PostgreSQL, Redis and a filesystem store (no engines:
completed jobs are simulated as the orchestrator finishes them)."""

from __future__ import annotations

import asyncio
import io
import zipfile
from datetime import UTC, datetime

import httpx
import pytest
from test_elevenlabs_api import SHORT_WAV, URL, complete, detail, job_row, new_job, post
from test_gateway_api import add_key, make_client, settings  # noqa: F401 - fixtures

from gateway.services import Services
from shared.entities import ENTITY_TYPES
from shared.transcript import AudioEvent, Entity, Segment, Transcript, Word

NATIVE = "/v1/audio/transcriptions"
SAID = "my name is Margaret Smith and my card is 4111 1111 1111 1111 thanks"


def _transcript() -> Transcript:
    tokens = SAID.split()
    words = [Word(text=t, start=i * 0.5, end=i * 0.5 + 0.4, probability=0.9) for i, t in enumerate(tokens)]

    def entity(kind: str, category: str, needle: str, first: int, last: int) -> Entity:
        start = SAID.index(needle)
        return Entity(
            type=kind,
            category=category,
            text=needle,
            start_char=start,
            end_char=start + len(needle),
            start=words[first].start,
            end=words[last].end,
            confidence=0.9,
            first_word=first,
            last_word=last,
        )

    return Transcript(
        text=SAID,
        language="en",
        language_probability=0.98,
        duration=8.0,
        segments=[Segment(id=0, start=0.0, end=words[-1].end, text=SAID, words=words, tokens=[11, 12])],
        words=words,
        model="tiny.en",
        entities=[
            entity("person_name", "pii", "Margaret Smith", 3, 4),
            entity("credit_card", "pci", "4111 1111 1111 1111", 9, 12),
        ],
        summary="Margaret Smith gave a card number.",
    )


@pytest.fixture
async def native(make_client) -> tuple[httpx.AsyncClient, Services]:  # noqa: F811
    client, services = await make_client()
    client.headers["Authorization"] = f"Bearer {await add_key(services)}"
    return client, services


@pytest.fixture
async def eleven(make_client) -> tuple[httpx.AsyncClient, Services]:  # noqa: F811
    client, services = await make_client()
    client.headers["xi-api-key"] = await add_key(services)
    return client, services


async def submit(client: httpx.AsyncClient, data: dict) -> httpx.Response:
    files = {"file": (SHORT_WAV.name, SHORT_WAV.read_bytes(), "audio/x-wav")}
    return await client.post(NATIVE, files=files, data=data)


def error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return body["message"]


# --- native ------------------------------------------------------------------------------------


async def test_native_pii_options_become_the_jobs_enrichment(native) -> None:
    client, services = native
    response = await submit(
        client,
        {
            "pii_detection": "true",
            "pii_entity_types": "person_name, credit_card",
            "redact_pii_text": "entity_type",
            "redact_pii_audio": "true",
            "pii_redaction_mode": "beep",
            "pii_audio_buffer_s": "0.25",
            "delete_original_audio": "true",
        },
    )
    assert response.status_code == 201, response.text
    job = await job_row(services, response.json()["id"])
    assert job.parameters["enrich"] == {
        "pii_detection": True,
        "pii_entity_types": ["person_name", "credit_card"],
        "redact_pii_text": "entity_type",
        "redact_pii_audio": True,
        "pii_redaction_mode": "beep",
        "pii_audio_buffer_s": 0.25,
        "delete_original_audio": True,
    }


async def test_native_entity_types_repeated_or_by_category(native) -> None:
    client, services = native
    response = await submit(client, {"pii_detection": "true", "pii_entity_types": ["pci", "email_address"]})
    assert response.status_code == 201, response.text
    job = await job_row(services, response.json()["id"])
    assert job.parameters["enrich"]["pii_entity_types"] == ["credit_card", "iban", "email_address"]
    plain = await submit(client, {"model": "tiny.en"})
    assert "enrich" not in (await job_row(services, plain.json()["id"])).parameters


@pytest.mark.parametrize(
    ("data", "code", "needle"),
    [
        ({"pii_detection": "true", "pii_entity_types": "person_name,shoe_size"}, "invalid_parameter", "shoe_size"),
        ({"pii_entity_types": "person_name"}, "invalid_parameter", "pii_detection"),
        ({"redact_pii_text": "blackout"}, "invalid_parameter", "redact_pii_text"),
        ({"pii_detection": "true", "pii_redaction_mode": "beep"}, "invalid_parameter", "redact_pii_audio"),
        ({"redact_pii_audio": "true", "pii_redaction_mode": "bleep"}, "invalid_parameter", "pii_redaction_mode"),
        ({"redact_pii_audio": "true", "pii_audio_buffer_s": "5"}, "invalid_parameter", "pii_audio_buffer_s"),
        ({"pii_detection": "maybe"}, "invalid_parameter", "pii_detection"),
        ({"llm_cleanup": "true"}, "feature_unavailable", "DALSTON_LLM_BASE_URL"),
        ({"no_verbatim": "true", "summary": "true"}, "feature_unavailable", "no_verbatim, summary"),
        ({"detect_emotions": "true"}, "feature_unavailable", "DALSTON_EMOTION_MODEL"),
        ({"detect_events": "true"}, "feature_unavailable", "DALSTON_EVENTS_MODEL"),
    ],
)
async def test_native_bad_enrichment_is_refused_clearly(native, data: dict, code: str, needle: str) -> None:
    client, _ = native
    assert needle in error(await submit(client, data), 400, code)


async def test_native_llm_options_are_accepted_when_the_refiner_is_configured(make_client) -> None:  # noqa: F811
    client, services = await make_client(llm_base_url="http://127.0.0.1:9/v1")
    client.headers["Authorization"] = f"Bearer {await add_key(services)}"
    response = await submit(client, {"llm_cleanup": "true", "summary": "true", "detect_emotions": "false"})
    assert response.status_code == 201, response.text
    assert (await job_row(services, response.json()["id"])).parameters["enrich"] == {
        "llm_cleanup": True,
        "summary": True,
        "detect_emotions": False,
    }


async def test_native_detail_and_exports_of_a_redacted_job(native) -> None:
    client, services = native
    response = await submit(client, {"pii_detection": "true", "redact_pii_text": "enumerated_entity_type"})
    job_id = response.json()["id"]
    await complete(services, job_id, _transcript())

    body = (await client.get(f"{NATIVE}/{job_id}")).json()
    assert [e["type"] for e in body["entities"]] == ["person_name", "credit_card"]
    assert body["summary"] == "Margaret Smith gave a card number."
    assert body["redacted_text"] == "my name is {PERSON_NAME_1} and my card is {CREDIT_CARD_1} thanks"

    for fmt in ("txt", "srt", "vtt", "json"):
        export = await client.get(f"{NATIVE}/{job_id}/export/{fmt}")
        assert export.status_code == 200, export.text
        assert "{PERSON_NAME_1}" in export.text, fmt
        assert "Margaret" not in export.text and "4111" not in export.text, fmt
    docx = await client.get(f"{NATIVE}/{job_id}/export/docx")
    document = zipfile.ZipFile(io.BytesIO(docx.content)).read("word/document.xml").decode()
    assert "{PERSON_NAME_1}" in document and "Margaret" not in document

    # Read through the ElevenLabs API, the native job's redaction holds too.
    client.headers["xi-api-key"] = client.headers["Authorization"].removeprefix("Bearer ")
    eleven = (await client.get(f"{URL}/transcripts/{job_id}")).json()
    assert "Margaret" not in eleven["text"] and "entities" not in eleven


async def test_native_json_export_carries_entities_and_summary(native) -> None:
    client, services = native
    job_id = (await submit(client, {"pii_detection": "true"})).json()["id"]
    await complete(services, job_id, _transcript())
    exported = (await client.get(f"{NATIVE}/{job_id}/export/json")).json()
    assert [e["text"] for e in exported["entities"]] == ["Margaret Smith", "4111 1111 1111 1111"]
    assert exported["summary"] and (await client.get(f"{NATIVE}/{job_id}")).json()["redacted_text"] is None


# --- ElevenLabs ----------------------------------------------------------------------------------


async def _sync(client: httpx.AsyncClient, services: Services, **data) -> tuple[dict, dict]:
    """A synchronous request completed with the fixture transcript: (response body, stored parameters)."""
    since = datetime.now(UTC)
    request = asyncio.create_task(post(client, **data))
    job = await new_job(services, since, request)
    await complete(services, str(job.id), _transcript())
    response = await request
    assert response.status_code == 200, response.text
    return response.json(), (await job_row(services, str(job.id))).parameters


@pytest.mark.parametrize(
    "detection",
    [
        {"entity_detection": '"all"'},  # Python SDK v2.59
        {"entity_detection": ["pii", "pci", "phi", "other"]},  # repeated fields
        {"entity_detection": "all", "entity_redaction": "null", "keyterms": "null"},
    ],
)
async def test_elevenlabs_entity_detection(eleven, detection: dict) -> None:
    client, services = eleven
    body, parameters = await _sync(client, services, **detection)
    assert parameters["enrich"] == {"pii_detection": True, "pii_entity_types": list(ENTITY_TYPES)}
    assert [e["entity_type"] for e in body["entities"]] == ["person_name", "credit_card"]
    for e in body["entities"]:
        assert body["text"][e["start_char"] : e["end_char"]] == e["text"]


async def test_elevenlabs_entity_redaction(eleven) -> None:
    client, services = eleven
    body, parameters = await _sync(client, services, entity_detection='"all"', entity_redaction='["pci"]')
    assert "entities" not in body
    assert body["text"] == "my name is Margaret Smith and my card is {CREDIT_CARD_1} thanks"
    assert "{CREDIT_CARD_1}" in [w["text"] for w in body["words"]]
    assert parameters["enrich"]["redact_pii_text"] == "enumerated_entity_type"
    assert parameters["elevenlabs"]["request_options"]["entity_redaction"] == ["credit_card", "iban"]

    body, _ = await _sync(client, services, entity_detection="all", entity_redaction="all", entity_redaction_mode="redacted")
    assert body["text"] == "my name is {REDACTED} and my card is {REDACTED} thanks"
    # GET renders the stored redaction again.
    again = (await client.get(f"{URL}/transcripts/{body['transcription_id']}")).json()
    assert again["text"] == body["text"]


async def test_elevenlabs_entity_errors(eleven) -> None:
    client, _ = eleven
    assert "passport" in detail(await post(client, entity_detection='"passport"'), 422, "invalid_parameter")
    assert "subset" in detail(await post(client, entity_redaction='"all"'), 422, "invalid_parameter")
    message = detail(await post(client, entity_detection='"pci"', entity_redaction='"pii"'), 422, "invalid_parameter")
    assert "person_name" in message
    detail(
        await post(client, entity_detection="all", entity_redaction="all", entity_redaction_mode="x"), 422, "invalid_parameter"
    )
    assert "DALSTON_LLM_BASE_URL" in detail(await post(client, no_verbatim="true"), 400, "feature_unavailable")
    assert "keyterms" in detail(await post(client, keyterms='["a]b"]'), 422, "invalid_parameter")


async def test_elevenlabs_keyterms_become_hotwords(eleven) -> None:
    client, services = eleven
    _, parameters = await _sync(client, services, keyterms='["Dalston","Hackney Wick"]')
    assert parameters["transcribe"] == {"hotwords": "Dalston, Hackney Wick"}


async def test_enrichment_capabilities(native, make_client) -> None:  # noqa: F811
    client, _ = native
    body = (await client.get("/v1/audio/enrichment")).json()
    assert [t["id"] for t in body["entity_types"]] == list(ENTITY_TYPES)
    assert body["redaction_styles"] == ["redacted", "entity_type", "enumerated_entity_type"]
    assert body["llm_refine"]["available"] is False and "DALSTON_LLM_BASE_URL" in body["llm_refine"]["reason"]
    configured, services = await make_client(llm_base_url="http://127.0.0.1:9/v1")
    configured.headers["Authorization"] = f"Bearer {await add_key(services, scopes=['jobs:read'])}"
    assert (await configured.get("/v1/audio/enrichment")).json()["llm_refine"] == {"available": True, "reason": None}
    configured.headers["Authorization"] = f"Bearer {await add_key(services, scopes=['webhooks'])}"
    assert (await configured.get("/v1/audio/enrichment")).status_code == 403


async def test_audio_enrichment_is_accepted_once_its_models_are_configured(make_client) -> None:  # noqa: F811
    client, services = await make_client(emotion_model="/models/emotion2vec", events_model="/models/panns")
    client.headers["Authorization"] = f"Bearer {await add_key(services)}"
    response = await submit(client, {"detect_emotions": "true", "detect_events": "true"})
    assert response.status_code == 201, response.text
    job = await job_row(services, response.json()["id"])
    assert job.parameters["enrich"] == {"detect_emotions": True, "detect_events": True}
    body = (await client.get("/v1/audio/enrichment")).json()
    assert body["emotions"] == {"available": True, "reason": None} and body["events"]["available"] is True
    assert "laughter" in body["event_types"]


async def test_elevenlabs_tag_audio_events_runs_the_events_stage_where_it_can(make_client) -> None:  # noqa: F811
    # Without an event model the default tag_audio_events=true is answered with the transcript alone.
    plain, services = await make_client()
    plain.headers["xi-api-key"] = await add_key(services)
    _, parameters = await _sync(plain, services)
    assert "enrich" not in parameters

    client, services = await make_client(events_model="/models/panns")
    client.headers["xi-api-key"] = await add_key(services)
    since = datetime.now(UTC)
    request = asyncio.create_task(post(client))
    job = await new_job(services, since, request)
    assert job.parameters["enrich"] == {"detect_events": True}
    laugh = AudioEvent(type="laughter", start=0.9, end=1.6, confidence=0.8)
    await complete(services, str(job.id), _transcript().model_copy(update={"audio_events": [laugh]}))
    body = (await request).json()
    events = [w for w in body["words"] if w["type"] == "audio_event"]
    assert [(e["text"], e["start"], e["end"]) for e in events] == [("(laughter)", 0.9, 1.6)]

    _, parameters = await _sync(client, services, tag_audio_events="false")
    assert "enrich" not in parameters
