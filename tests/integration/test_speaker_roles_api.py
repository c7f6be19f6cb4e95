"""`detect_speaker_roles` on the ElevenLabs batch API against real PostgreSQL, Redis and a
filesystem store (no engines: the job is completed with a transcript as merge writes it):
refusals in ElevenLabs' error shape, the stored options, and `agent` / `customer` speaker ids
in the response, its GET and its documents."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from test_elevenlabs_api import URL, complete, detail, job_row, new_job, post
from test_gateway_api import add_key, make_client, settings  # noqa: F401 - fixtures

from gateway.services import Services
from shared.transcript import Segment, Transcript, Word

LLM = "http://127.0.0.1:9/v1"  # configured (so accepted); nothing runs here


def _call() -> Transcript:
    lines = [("speaker_0", "thank you for calling how can i help"), ("speaker_1", "i would like to pay my bill")]
    segments, t = [], 0.0
    for i, (speaker, text) in enumerate(lines):
        words = []
        for token in text.split():
            words.append(Word(text=token, start=round(t, 2), end=round(t + 0.3, 2), speaker=speaker, probability=0.9))
            t += 0.4
        segments.append(Segment(id=i, start=words[0].start, end=words[-1].end, text=text, words=words, speaker=speaker))
    return Transcript(
        text=" ".join(text for _, text in lines),
        language="en",
        language_probability=0.99,
        duration=t,
        segments=segments,
        words=[w for s in segments for w in s.words],
        speakers=["speaker_0", "speaker_1"],
        model="tiny.en",
        speaker_roles={"speaker_0": "agent", "speaker_1": "customer"},
    )


async def _client(make_client, **overrides) -> tuple[httpx.AsyncClient, Services]:  # noqa: F811
    client, services = await make_client(**overrides)
    client.headers["xi-api-key"] = await add_key(services)
    return client, services


async def test_refusals_in_elevenlabs_shape(make_client) -> None:  # noqa: F811
    client, _ = await _client(make_client, llm_base_url=LLM)
    assert "diarize=true" in detail(await post(client, detect_speaker_roles="true"), 422, "invalid_parameter")
    message = detail(await post(client, detect_speaker_roles="true", use_multi_channel="true"), 422, "invalid_parameter")
    assert "use_multi_channel" in message
    unconfigured, _ = await _client(make_client)
    response = await post(unconfigured, detect_speaker_roles="true", diarize="true")
    message = detail(response, 400, "feature_unavailable")
    assert "DALSTON_LLM_BASE_URL" in message or "diariz" in message  # the LLM, or no diarizer here at all


async def test_roles_become_speaker_ids_and_stay_on_get(make_client) -> None:  # noqa: F811
    client, services = await _client(make_client, llm_base_url=LLM)
    since = datetime.now(UTC)
    request = asyncio.create_task(
        post(client, diarize="true", detect_speaker_roles="true", additional_formats='[{"format": "txt"}]')
    )
    try:
        job = await new_job(services, since, request)
    except AssertionError:
        response = request.result()
        if response.status_code == 400 and "diariz" in response.text:
            pytest.skip(f"no diarizer on this server: {response.text}")
        raise
    assert job.parameters["enrich"] == {"speaker_roles": True}
    assert job.parameters["elevenlabs"]["request_options"]["detect_speaker_roles"] is True
    await complete(services, str(job.id), _call())
    response = await request
    assert response.status_code == 200, response.text
    body = response.json()
    ids = {w["text"]: w["speaker_id"] for w in body["words"] if w["type"] == "word"}
    assert ids["calling"] == "agent" and ids["bill"] == "customer"
    assert "agent" in body["additional_formats"][0]["content"]
    again = (await client.get(f"{URL}/transcripts/{body['transcription_id']}")).json()
    assert again["words"] == body["words"]
    assert (await job_row(services, str(job.id))).speaker_detection == "diarize"
