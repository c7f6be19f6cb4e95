"""Known speakers end to end: voices enrolled from their own samples name the speakers of new
recordings, through the whole fleet (gateway → prepare → transcribe ‖ diarize → merge).

Fixtures (make_known_speakers.py): flite's slt, rms and awb voices, three real people's
recordings; an enrollment sample per voice, a three-voice meeting and a two-voice call with
text none of the samples has. The fleet's tenant enrolls slt ("Ada") and rms ("Ben"); a
second tenant enrolls awb ("Cal"). The speaker count is given where it is not what is
tested (the automatic count is another feature's).
"""

from __future__ import annotations

import io
import json
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from elevenlabs import ElevenLabs
from harness import API_KEY, RunningFleet, start_fleet, submit, wait_for
from support import FIXTURES

pytestmark = pytest.mark.e2e
pytest.importorskip("silero_vad", reason="speaker detection needs the 'diarize' extra")

REDIS_DB = 14  # beside the default e2e fleets (8, 9) and the other module fleets
SPEAKERS = "/v1/speakers"
MIN_ATTRIBUTION = 0.9


@dataclass
class Library:
    fleet: RunningFleet
    other_key: str  # the second tenant's
    ids: dict[str, str]  # name -> enrolled speaker id
    enrolled: dict[str, dict]  # name -> the enrollment response

    def other(self) -> httpx.Client:
        return self.fleet.client(self.other_key)


def enroll(client: httpx.Client, name: str, path: Path, **data: str) -> httpx.Response:
    with path.open("rb") as f:
        return client.post(SPEAKERS, files={"file": (path.name, f)}, data={"name": name, **data}, timeout=400)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Iterator[Library]:
    env = {"DALSTON_SPEAKER_ENROLL_TIMEOUT_S": "300"}  # the first sample waits for the diarizer to load
    for fleet in start_fleet("fs", tmp_path_factory.mktemp("fleet-known-speakers"), env, redis_db=REDIS_DB):
        with fleet.client() as client:
            created = client.post(
                "/v1/keys",
                json={"name": "other", "scopes": ["jobs:read", "jobs:write"], "tenant": "other", "create_tenant": True},
            )
            assert created.status_code == 201, created.text
            other_key = created.json()["key"]
            enrolled = {
                "Ada": enroll(client, "Ada", FIXTURES / "speaker_slt_en.wav"),
                "Ben": enroll(client, "Ben", FIXTURES / "speaker_rms_en.wav"),
            }
        with fleet.client(other_key) as other:
            enrolled["Cal"] = enroll(other, "Cal", FIXTURES / "speaker_awb_en.wav")
        for name, response in enrolled.items():
            assert response.status_code == 201, (name, response.text)
        yield Library(
            fleet=fleet,
            other_key=other_key,
            ids={name: r.json()["id"] for name, r in enrolled.items()},
            enrolled={name: r.json() for name, r in enrolled.items()},
        )


def truth(name: str) -> list[dict]:
    return json.loads((FIXTURES / f"{name}.json").read_text())["turns"]


def voice_at(turns: list[dict], t: float) -> str:
    return min(turns, key=lambda turn: max(turn["start"] - t, t - turn["end"], 0.0))["speaker"]


def attribution(words: list[dict], turns: list[dict], label_of: dict[str, str]) -> dict[str, float]:
    """Per true voice: the share of its words that carry the label expected for it."""
    shares = {}
    for voice, label in label_of.items():
        mine = [w for w in words if voice_at(turns, (w["start"] + w["end"]) / 2) == voice]
        assert mine, voice
        shares[voice] = sum(w["speaker"] == label for w in mine) / len(mine)
    return shares


def transcribe(client: httpx.Client, name: str, **fields: str) -> dict:
    created = submit(client, FIXTURES / f"{name}.wav", speaker_detection="diarize", **fields)
    assert created.status_code == 201, created.text
    job = wait_for(client, created.json()["id"], timeout=300)
    assert job["status"] == "completed", job
    return job


def test_enrollment_describes_the_voice_and_hides_its_job(library: Library) -> None:
    for name in ("Ada", "Ben", "Cal"):
        body = library.enrolled[name]
        assert body["name"] == name and body["voices_in_sample"] == 1 and body["warnings"] == []
        assert body["speech_seconds"] >= 3 and body["encoder"] == "resemblyzer" and body["audio_kept"] is False
    with library.fleet.client() as client:
        assert sorted(s["name"] for s in client.get(SPEAKERS).json()["speakers"]) == ["Ada", "Ben"]
        jobs = client.get("/v1/audio/transcriptions", params={"limit": 100}).json()["jobs"]
        assert not [j for j in jobs if (j["audio"]["filename"] or "").startswith("speaker_")]
    with library.other() as other:
        assert [s["name"] for s in other.get(SPEAKERS).json()["speakers"]] == ["Cal"]


def test_enrolled_voices_are_named_and_an_unenrolled_one_stays_anonymous(library: Library) -> None:
    with library.fleet.client() as client:
        job = transcribe(client, "meeting_en", num_speakers="3", known_speakers="all")
        srt = client.get(f"/v1/audio/transcriptions/{job['id']}/export/srt").text
    transcript = job["transcript"]
    anonymous = [s for s in transcript["speakers"] if s not in ("Ada", "Ben")]
    assert sorted(transcript["speakers"]) == sorted(["Ada", "Ben", *anonymous]) and len(anonymous) == 1
    assert anonymous[0].startswith("speaker_")  # awb: enrolled by the other tenant only, as "Cal"
    shares = attribution(transcript["words"], truth("meeting_en"), {"slt": "Ada", "rms": "Ben", "awb": anonymous[0]})
    assert min(shares.values()) >= MIN_ATTRIBUTION, shares
    known = transcript["known_speakers"]
    assert {label: (m["id"], m["name"]) for label, m in known.items()} == {
        "Ada": (library.ids["Ada"], "Ada"),
        "Ben": (library.ids["Ben"], "Ben"),
    }
    assert "Cal" not in json.dumps(job) and "Ada" in srt and "Ben" in srt


def test_another_tenants_voices_are_its_own(library: Library) -> None:
    with library.fleet.client() as client:
        response = submit(client, FIXTURES / "duo_en.wav", speaker_detection="diarize", known_speakers=library.ids["Cal"])
        assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_speaker", response.text
        assert client.get(f"{SPEAKERS}/{library.ids['Cal']}").status_code == 404
        assert client.delete(f"{SPEAKERS}/{library.ids['Cal']}").status_code == 404
    with library.other() as other:
        assert other.get(f"{SPEAKERS}/{library.ids['Ada']}").status_code == 404
        # The other tenant's library holds only awb, who is not in this call: slt and rms
        # stay anonymous, rms although he is the voice most like awb's.
        job = transcribe(other, "duo_en", num_speakers="2", known_speakers="all")
    transcript = job["transcript"]
    assert transcript["known_speakers"] == {} and all(s.startswith("speaker_") for s in transcript["speakers"])


def test_elevenlabs_sdk_use_speaker_library(library: Library) -> None:
    client = ElevenLabs(base_url=library.fleet.base_url, api_key=API_KEY, timeout=300)
    with (FIXTURES / "duo_en.wav").open("rb") as f:
        result = client.speech_to_text.convert(
            model_id="scribe_v1", file=f, diarize=True, num_speakers=2, use_speaker_library=True, tag_audio_events=False
        )
    words = [{"start": w.start, "end": w.end, "speaker": w.speaker_id} for w in result.words if w.type == "word"]
    shares = attribution(words, truth("duo_en"), {"slt": "Ada", "rms": "Ben"})
    assert min(shares.values()) >= MIN_ATTRIBUTION, shares


def silence(seconds: float) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * int(16000 * seconds))
    return out.getvalue()


def test_unusable_samples_and_requests_are_refused(library: Library) -> None:
    with library.fleet.client() as client:
        response = client.post(SPEAKERS, files={"file": ("quiet.wav", silence(4.0))}, data={"name": "Quiet"}, timeout=400)
        assert response.status_code == 400 and response.json()["error"]["code"] == "no_speech", response.text
        response = enroll(client, "Brief", FIXTURES / "speaker_short_en.wav")
        assert response.status_code == 400 and response.json()["error"]["code"] == "sample_too_short", response.text
        response = submit(client, FIXTURES / "duo_en.wav", known_speakers="all")
        assert response.status_code == 400 and "speaker_detection=diarize" in response.text
        names = [s["name"] for s in client.get(SPEAKERS).json()["speakers"]]
    assert "Quiet" not in names and "Brief" not in names


def test_a_kept_sample_is_served_and_deleted_with_its_voice(library: Library) -> None:
    sample = FIXTURES / "speaker_awb_en.wav"
    with library.fleet.client() as client:
        response = enroll(client, "Temporary", sample, keep_audio="true")
        assert response.status_code == 201, response.text
        speaker = response.json()
        assert speaker["audio_kept"] is True
        audio = client.get(f"{SPEAKERS}/{speaker['id']}/audio")
        assert audio.status_code == 200 and audio.content == sample.read_bytes()
        assert client.delete(f"{SPEAKERS}/{speaker['id']}").status_code == 204
        assert client.get(f"{SPEAKERS}/{speaker['id']}").status_code == 404
        assert client.get(f"{SPEAKERS}/{speaker['id']}/audio").status_code == 404
    assert not list(library.fleet.data_dir.rglob(f"*{speaker['id']}*"))
