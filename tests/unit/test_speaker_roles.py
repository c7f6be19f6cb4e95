"""ElevenLabs `detect_speaker_roles`: request parsing and refusals (in ElevenLabs' error shape),
the refine stage's config, the engine's validation of the model's answer (a scripted chat,
no server) and the response's `agent` / `customer` speaker ids."""

from __future__ import annotations

import json
from typing import Any

import pytest

from engines.llm_cleanup.engine import LlmCleanupEngine
from engines.merge.enrichment import apply_enrichment
from gateway.elevenlabs.errors import from_api_error
from gateway.elevenlabs.request import parse_convert
from gateway.enrichment import check_available
from gateway.errors import ApiError
from gateway.forms import Fields
from gateway.stored_jobs import with_speaker_names
from orchestrator.dag import JobSpec, build_dag
from shared.catalogue import SpeakerDetection
from shared.contracts import EnrichOptions, JobParameters, RefineConfig, RefineOutput
from shared.formats.documents import ExportOptions
from shared.formats.elevenlabs import ResponseOptions, to_response
from shared.settings import Settings
from shared.transcript import Segment, Transcript, Word

LINES = [
    ("spk_a", "thank you for calling northwind bank how can i help"),
    ("spk_b", "hi i would like to pay my bill"),
    ("spk_a", "sure can i have your account number"),
    ("spk_c", "sorry wrong line"),
]


def fields(**values: str) -> Fields:
    return {k: [v] for k, v in values.items()}


def call(roles: dict[str, str] | None = None) -> Transcript:
    segments, t = [], 0.0
    for i, (speaker, text) in enumerate(LINES):
        words = []
        for token in text.split():
            words.append(Word(text=token, start=round(t, 2), end=round(t + 0.3, 2), speaker=speaker, probability=0.9))
            t += 0.4
        segments.append(Segment(id=i, start=words[0].start, end=words[-1].end, text=text, words=words, speaker=speaker))
    return Transcript(
        text=" ".join(text for _, text in LINES),
        language="en",
        language_probability=1.0,
        duration=t,
        segments=segments,
        words=[w for s in segments for w in s.words],
        speakers=["spk_a", "spk_b", "spk_c"],
        model="tiny.en",
        speaker_roles=roles or {},
    )


def elevenlabs_error(exc: ApiError) -> tuple[int, dict[str, Any]]:
    response = from_api_error(exc)
    return response.status_code, json.loads(bytes(response.body))


# --- the request ------------------------------------------------------------------------


def test_detect_speaker_roles_maps_to_the_refine_stage_without_cleanup() -> None:
    request = parse_convert(fields(model_id="scribe_v1", diarize="true", detect_speaker_roles="true"))
    assert request.detect_speaker_roles and request.response_options().detect_speaker_roles
    enrich = request.enrich(events_available=False)
    assert enrich is not None and enrich.speaker_roles and enrich.refine
    assert not (enrich.llm_cleanup or enrich.no_verbatim or enrich.summary)
    off = parse_convert(fields(model_id="scribe_v1", diarize="true", detect_speaker_roles="false"))
    assert not off.detect_speaker_roles and off.enrich(events_available=False) is None


@pytest.mark.parametrize(
    ("given", "needle"),
    [
        ({"detect_speaker_roles": "true"}, "diarize=true"),
        ({"detect_speaker_roles": "True", "diarize": "false"}, "diarize=true"),
        ({"detect_speaker_roles": "1", "use_multi_channel": "true"}, "use_multi_channel"),
    ],
)
def test_detect_speaker_roles_needs_diarize_and_no_multichannel(given: dict[str, str], needle: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_convert(fields(model_id="scribe_v1", **given))
    status, body = elevenlabs_error(caught.value)
    # A request to change, which ElevenLabs answers with 422 (gateway.elevenlabs.errors).
    assert status == 422 and body["detail"]["status"] == "invalid_parameter"
    assert needle in body["detail"]["message"] and "detect_speaker_roles" in body["detail"]["message"]


def test_detect_speaker_roles_without_an_llm_is_feature_unavailable() -> None:
    enrich = parse_convert(fields(model_id="scribe_v1", diarize="true", detect_speaker_roles="true")).enrich(
        events_available=False
    )
    assert enrich is not None
    with pytest.raises(ApiError) as caught:
        check_available(Settings(llm_base_url=None), enrich)
    status, body = elevenlabs_error(caught.value)
    assert status == 400 and body["detail"]["status"] == "feature_unavailable"
    assert "detect_speaker_roles" in body["detail"]["message"] and "DALSTON_LLM_BASE_URL" in body["detail"]["message"]
    check_available(Settings(llm_base_url="http://127.0.0.1:9/v1"), enrich)  # configured: accepted


def test_roles_alone_ask_the_refine_stage_for_roles_only() -> None:
    def refine_config(enrich: EnrichOptions) -> RefineConfig:
        spec = JobSpec(model="tiny.en", speaker_detection=SpeakerDetection.DIARIZE, parameters=JobParameters(enrich=enrich))
        config = next(n for n in build_dag(spec) if n.name == "refine").config
        assert isinstance(config, RefineConfig)
        return config

    assert refine_config(EnrichOptions(speaker_roles=True)) == RefineConfig(cleanup=False, speaker_roles=True)
    both = refine_config(EnrichOptions(speaker_roles=True, no_verbatim=True))
    assert both.cleanup and both.no_verbatim and both.speaker_roles
    assert refine_config(EnrichOptions(llm_cleanup=True)) == RefineConfig()


# --- the engine's validation of the model's answers (scripted chat) -----------------------


class Scripted(LlmCleanupEngine):
    """The engine with its chat requests answered from a list (what a model might say)."""

    def __init__(self, answers: list[str]) -> None:
        super().__init__(Settings(llm_base_url="http://127.0.0.1:9/v1", llm_model="scripted"))
        self.answers = answers
        self.asked: list[list[dict[str, str]]] = []

    def _chat(self, messages: list[dict[str, str]], *, schema: dict[str, Any] | None, max_tokens: int) -> str:
        self.asked.append(messages)
        return self.answers.pop(0)


def roles_only(answers: list[str]) -> tuple[RefineOutput, Scripted]:
    engine = Scripted(answers)
    return engine.refine(call(), RefineConfig(cleanup=False, speaker_roles=True)), engine


def test_consistent_answers_give_roles_and_leave_the_text_alone() -> None:
    # Speakers are labelled A, B, C by first appearance, then C, B, A: spk_a is A, then C.
    out, engine = roles_only(['{"agent": "A", "customer": "B"}', '{"agent": "C", "customer": "B"}'])
    assert out.speaker_roles == {"spk_a": "agent", "spk_b": "customer"}
    assert out.details["speaker_roles_refused"] == 0 and out.details["cleanup"] is False
    assert out.segments == call().segments and out.speaker_names == {} and out.entities is None
    assert len(engine.asked) == 2  # the two role requests, no cleanup or naming
    first, second = (m[-1]["content"] for m in engine.asked)
    assert first.splitlines()[0].startswith("A: thank you") and second.splitlines()[0].startswith("C: thank you")
    assert "spk_" not in first + second  # the model sees neutral labels only


@pytest.mark.parametrize(
    ("answers", "why"),
    [
        # Label bias: "A" is the agent whoever A is.
        (['{"agent": "A", "customer": "B"}', '{"agent": "A", "customer": "B"}'], "swapped"),
        (['{"agent": "B", "customer": "B"}'], "both roles"),
        (['{"agent": "A", "customer": "speaker_7"}'], "lacks"),
        (['{"agent": "A"}'], "invalid JSON"),
        (["the agent is A"], "invalid JSON"),
    ],
)
def test_unusable_answers_are_refused_and_counted(answers: list[str], why: str) -> None:
    out, _ = roles_only(answers)
    assert out.speaker_roles == {} and out.details["speaker_roles_refused"] == 1
    assert any(why in w for w in out.details["warnings"]), out.details["warnings"]


def test_one_speaker_is_not_asked_and_not_a_refusal() -> None:
    monologue = call().model_copy(
        update={"segments": [s.model_copy(update={"speaker": "spk_a"}) for s in call().segments], "speakers": ["spk_a"]}
    )
    engine = Scripted([])
    out = engine.refine(monologue, RefineConfig(cleanup=False, speaker_roles=True))
    assert out.speaker_roles == {} and out.details["speaker_roles_refused"] == 0 and engine.asked == []


def test_merge_keeps_the_roles_on_the_transcript() -> None:
    refined = RefineOutput(segments=call().segments, speaker_roles={"spk_a": "agent"}, details={"engine_id": "llm-cleanup"})
    merged = apply_enrichment(call(), refined=refined)
    assert merged.speaker_roles == {"spk_a": "agent"} and merged.text == call().text
    assert merged.stages[-1].details["speaker_roles"] == {"spk_a": "agent"}


# --- the response ---------------------------------------------------------------------------


def speaker_id_of(body: dict[str, Any]) -> dict[str, str]:
    return {w["text"]: w["speaker_id"] for w in body["words"] if w["type"] == "word"}


def test_words_of_speakers_with_a_role_carry_it() -> None:
    roles = {"spk_a": "agent", "spk_b": "customer"}
    body = to_response(call(roles), ResponseOptions(detect_speaker_roles=True), transcription_id="t")
    ids = speaker_id_of(body)
    assert ids["northwind"] == "agent" and ids["bill"] == "customer"
    assert ids["wrong"] == "speaker_2"  # no role: keeps its ElevenLabs id
    assert {w["speaker_id"] for w in body["words"]} == {"agent", "customer", "speaker_2"}  # spacing too


def test_roles_show_only_when_the_job_asked_for_them() -> None:
    body = to_response(call({"spk_a": "agent", "spk_b": "customer"}), ResponseOptions(), transcription_id="t")
    assert set(speaker_id_of(body).values()) == {"speaker_0", "speaker_1", "speaker_2"}
    # Asked, but the refine stage gave none (refused, or it failed): plain ids.
    body = to_response(call(), ResponseOptions(detect_speaker_roles=True), transcription_id="t")
    assert set(speaker_id_of(body).values()) == {"speaker_0", "speaker_1", "speaker_2"}


def test_documents_and_renamed_speakers_keep_the_roles() -> None:
    options = ResponseOptions(detect_speaker_roles=True, additional_formats=[ExportOptions(format="srt", include_speakers=True)])
    body = to_response(call({"spk_a": "agent", "spk_b": "customer"}), options, transcription_id="t")
    assert "agent" in body["additional_formats"][0]["content"]
    # The user's speaker names relabel the transcript before rendering; the roles follow.
    named = with_speaker_names(call({"spk_a": "agent", "spk_b": "customer"}), {"spk_a": "Margaret"})
    assert named.speaker_roles == {"Margaret": "agent", "spk_b": "customer"}
    assert speaker_id_of(to_response(named, ResponseOptions(detect_speaker_roles=True), transcription_id="t"))["bank"] == "agent"
