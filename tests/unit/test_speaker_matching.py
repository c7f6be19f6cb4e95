"""Known speakers, the pure parts: voiceprints, one-to-one matching, the enrollment DAG, the
names in the transcript (enrolled over LLM-inferred, under the user's) and in the ElevenLabs
response."""

from __future__ import annotations

import numpy as np
import pytest

from engines.assembly import assemble
from engines.diarize_default.voices import ENCODER, match, voiceprints
from engines.merge.enrichment import apply_enrichment
from gateway.enrollment import group_voices
from gateway.stored_jobs import with_speaker_names
from orchestrator.dag import JobSpec, build_dag
from shared.catalogue import SpeakerDetection
from shared.contracts import (
    DiarizeOutput,
    JobParameters,
    JobPurpose,
    KnownSpeaker,
    PrepareOutput,
    RefineOutput,
    SpeakerOptions,
    SpeakerTurn,
    TranscribeOutput,
    Voiceprint,
)
from shared.formats.elevenlabs import ResponseOptions, to_response
from shared.transcript import Segment, SpeakerMatch, Word

rng = np.random.default_rng(7)


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


VOICE_A, VOICE_B, VOICE_C = (unit(rng.normal(size=256)) for _ in range(3))


def near(v: np.ndarray, noise: float) -> list[float]:
    """A voiceprint of the same voice heard again: the same direction, a little off."""
    return [float(x) for x in unit(v + noise * unit(rng.normal(size=256)))]


def found(**speakers: list[float]) -> dict[str, Voiceprint]:
    return {s: Voiceprint(embedding=e, encoder=ENCODER, speech_seconds=5.0) for s, e in speakers.items()}


def known(name: str, v: np.ndarray, encoder: str = ENCODER) -> KnownSpeaker:
    return KnownSpeaker(id=f"id-{name}", name=name, embedding=[float(x) for x in v], encoder=encoder)


def test_a_voiceprint_is_the_unit_mean_of_the_windows_centred_in_its_turns() -> None:
    embeddings = np.array([VOICE_A, VOICE_A, VOICE_B, VOICE_B, VOICE_A])
    spans = [(0.0, 1.6), (0.4, 2.0), (3.0, 4.6), (3.4, 5.0), (2.4, 2.8)]  # the last is centred in no turn
    turns = [SpeakerTurn(speaker="speaker_0", start=0.0, end=2.1), SpeakerTurn(speaker="speaker_1", start=3.0, end=5.0)]
    prints = voiceprints(embeddings, spans, turns)
    assert set(prints) == {"speaker_0", "speaker_1"}
    assert np.allclose(prints["speaker_0"].embedding, VOICE_A, atol=1e-5)
    assert np.allclose(prints["speaker_1"].embedding, VOICE_B, atol=1e-5)
    assert prints["speaker_0"].speech_seconds == 2.1 and prints["speaker_0"].encoder == ENCODER
    assert abs(np.linalg.norm(prints["speaker_1"].embedding) - 1) < 1e-5
    assert voiceprints(np.zeros((0, 256)), [], []) == {}


def test_matching_is_one_to_one_and_keeps_only_pairs_past_the_threshold() -> None:
    speakers = found(speaker_0=near(VOICE_B, 0.3), speaker_1=near(VOICE_A, 0.3), speaker_2=near(VOICE_C, 0.3))
    matches = match(speakers, [known("Ada", VOICE_A), known("Ben", VOICE_B)], threshold=0.8)
    assert {s: m.name for s, m in matches.items()} == {"speaker_0": "Ben", "speaker_1": "Ada"}
    assert matches["speaker_1"].id == "id-Ada" and 0.8 <= matches["speaker_1"].similarity <= 1.0
    # Only Ada is enrolled and absent: nobody takes her name (random voices are ~0 apart).
    assert match(found(speaker_0=near(VOICE_B, 0.3)), [known("Ada", VOICE_A)], threshold=0.8) == {}


def test_two_speakers_never_share_a_name() -> None:
    # Both found speakers resemble Ada: the closer one gets the name, the other stays anonymous.
    speakers = found(speaker_0=near(VOICE_A, 0.2), speaker_1=near(VOICE_A, 0.6))
    matches = match(speakers, [known("Ada", VOICE_A)], threshold=0.5)
    assert list(matches) == ["speaker_0"]


def test_voiceprints_of_another_encoder_are_not_compared() -> None:
    speakers = found(speaker_0=near(VOICE_A, 0.1))
    assert match(speakers, [known("Ada", VOICE_A, encoder="ecapa")], threshold=0.5) == {}
    assert match({}, [known("Ada", VOICE_A)], threshold=0.5) == {}


def test_an_enrollment_job_is_prepare_then_diarize() -> None:
    spec = JobSpec(model="tiny.en", speaker_detection=SpeakerDetection.DIARIZE, purpose=JobPurpose.ENROLLMENT)
    nodes = build_dag(spec)
    assert [(n.name, n.depends_on) for n in nodes] == [("prepare", ()), ("diarize", ("prepare",))]


def test_known_speakers_reach_the_diarize_task() -> None:
    parameters = JobParameters(diarize=SpeakerOptions(num_speakers=2, known_speakers=[known("Ada", VOICE_A)]))
    nodes = {
        n.name: n for n in build_dag(JobSpec(model="tiny.en", speaker_detection=SpeakerDetection.DIARIZE, parameters=parameters))
    }
    assert [k.name for k in nodes["diarize"].config.known_speakers] == ["Ada"]  # type: ignore[union-attr]


TURNS = [SpeakerTurn(speaker="speaker_0", start=0.0, end=2.0), SpeakerTurn(speaker="speaker_1", start=3.0, end=5.0)]
ADA = SpeakerMatch(id="id-Ada", name="Ada", similarity=0.93)


def assembled(matches: dict[str, SpeakerMatch]):
    prepare = PrepareOutput(audio_key="a", channel_keys=["a"], duration=5.0, channels=1, original_sample_rate=16000)
    words = [Word(text="hi", start=0.1, end=0.5), Word(text="yo", start=3.2, end=3.6)]
    segment = Segment(id=0, start=0.0, end=4.0, text="hi yo", words=words)
    transcribed = TranscribeOutput(language="en", language_probability=1.0, duration=5.0, segments=[segment], model="tiny.en")
    diarized = DiarizeOutput(turns=TURNS, num_speakers=2, duration=5.0, matches=matches)
    return assemble(prepare, [transcribed], diarized=diarized)


def test_matched_speakers_are_named_in_the_transcript_and_keep_their_ids() -> None:
    t = assembled({"speaker_1": ADA})
    assert t.speakers == ["speaker_0", "speaker_1"] and t.words[1].speaker == "speaker_1"
    assert t.speaker_names == {"speaker_1": "Ada"} and t.known_speakers == {"speaker_1": ADA}


@pytest.mark.parametrize(
    ("inferred", "expected"),
    [
        ({"speaker_1": "Margaret"}, {"speaker_1": "Ada"}),  # enrolled beats inferred
        ({"speaker_0": "Tom"}, {"speaker_0": "Tom", "speaker_1": "Ada"}),
        ({"speaker_0": "Ada"}, {"speaker_1": "Ada"}),  # one label, one speaker
    ],
)
def test_enrolled_names_win_over_the_llms(inferred: dict[str, str], expected: dict[str, str]) -> None:
    t = assembled({"speaker_1": ADA})
    refined = RefineOutput(segments=t.segments, speaker_names=inferred, details={"engine_id": "llm-cleanup"})
    assert apply_enrichment(t, refined=refined).speaker_names == expected


def test_readers_label_speakers_user_names_first_and_elevenlabs_uses_the_library_names_when_asked() -> None:
    t = assembled({"speaker_1": ADA})
    named = with_speaker_names(t, {**t.speaker_names, "speaker_0": "Zoe"})
    assert named.speakers == ["Zoe", "Ada"] and named.known_speakers == {"Ada": ADA}
    assert with_speaker_names(t, {**t.speaker_names, "speaker_1": "Ann"}).speakers == ["speaker_0", "Ann"]

    plain = to_response(named, ResponseOptions(), transcription_id="j")
    assert {w["speaker_id"] for w in plain["words"] if w["type"] == "word"} == {"speaker_0", "speaker_1"}
    library = to_response(named, ResponseOptions(use_speaker_library=True), transcription_id="j")
    assert [w["speaker_id"] for w in library["words"] if w["type"] == "word"] == ["speaker_0", "Ada"]


def test_an_enrollment_sample_counts_alike_speakers_as_one_voice() -> None:
    # The diarizer may split one voice in two: alike halves are one voice, weighted by speech.
    halves = [
        Voiceprint(embedding=near(VOICE_A, 0.2), encoder=ENCODER, speech_seconds=3.0),
        Voiceprint(embedding=near(VOICE_A, 0.2), encoder=ENCODER, speech_seconds=4.0),
        Voiceprint(embedding=near(VOICE_B, 0.2), encoder=ENCODER, speech_seconds=5.0),
    ]
    voices = group_voices(halves, threshold=0.8)
    assert [v.speech_seconds for v in voices] == [7.0, 5.0]
    assert float(np.dot(voices[0].embedding, VOICE_A)) > 0.95 and abs(np.linalg.norm(voices[0].embedding) - 1) < 1e-5
    assert group_voices(halves[2:], threshold=0.8) == halves[2:]


def test_the_elevenlabs_response_names_library_speakers_whether_names_were_applied_or_not() -> None:
    # A webhook renders the stored transcript (pipeline ids), a GET the served one (names).
    stored = assembled({"speaker_1": ADA})
    options = ResponseOptions(use_speaker_library=True)
    for t in (stored, with_speaker_names(stored, stored.speaker_names)):
        words = to_response(t, options, transcription_id="j")["words"]
        assert [w["speaker_id"] for w in words if w["type"] == "word"] == ["speaker_0", "Ada"]
