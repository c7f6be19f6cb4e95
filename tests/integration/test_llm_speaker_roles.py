"""Speaker roles (ElevenLabs `detect_speaker_roles`) from a real local model through a real
OpenAI-compatible server (tests/llm_server, SmolLM2-135M; see test_llm_cleanup.py).

The conversations are the PII call fixtures' scripts (tests/fixtures/make_pii_calls.py: an
agent and a caller), lower-cased and unpunctuated as a transcriber without casing gives them,
with either role speaking as `speaker_0`. A 135M model cannot tell an agent from a customer
reliably; what is asserted is what the engine guarantees whatever the model says: roles only
for speakers of the transcript, one agent and one customer, never both to one speaker, the
text untouched, every refusal counted. The accuracy is printed (-s), not asserted.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import llm_server

from engines.llm_cleanup.engine import LlmCleanupEngine
from shared.contracts import RefineConfig
from shared.settings import Settings
from shared.transcript import Segment, Transcript, Word

FIXTURES = Path(__file__).parent.parent / "fixtures"


def _calls() -> dict[str, list[tuple[str, str, list[tuple[str, str]]]]]:
    spec = importlib.util.spec_from_file_location("make_pii_calls", FIXTURES / "make_pii_calls.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CALLS


@pytest.fixture(scope="module")
def engine() -> Iterator[LlmCleanupEngine]:
    with llm_server() as url:
        engine = LlmCleanupEngine(Settings(llm_base_url=url, llm_model="smollm2-135m"))
        engine.load()
        yield engine


def conversation(turns: list[tuple[str, str]], first: str) -> tuple[Transcript, dict[str, str]]:
    """A diarized transcript of `turns` ((role, text)) whose `first` role is speaker_0; and the truth."""
    label = {first: "speaker_0", ("caller" if first == "agent" else "agent"): "speaker_1"}
    segments, t = [], 0.0
    for i, (role, text) in enumerate(turns):
        words = []
        for token in re.sub(r"[^\w' ]", "", text.lower()).split():
            words.append(Word(text=token, start=round(t, 2), end=round(t + 0.3, 2), speaker=label[role], probability=0.9))
            t += 0.4
        said = " ".join(w.text for w in words)
        segments.append(Segment(id=i, start=words[0].start, end=words[-1].end, text=said, words=words, speaker=label[role]))
        t += 0.6
    transcript = Transcript(
        text=" ".join(s.text for s in segments),
        language="en",
        language_probability=1.0,
        duration=t,
        segments=segments,
        words=[w for s in segments for w in s.words],
        speakers=["speaker_0", "speaker_1"],
        model="test",
    )
    return transcript, {label["agent"]: "agent", label["caller"]: "customer"}


def test_roles_from_the_local_model_are_valid_or_refused(engine: LlmCleanupEngine) -> None:
    outcomes: dict[str, int] = {"right": 0, "wrong": 0, "refused": 0}
    for name, script in _calls().items():
        for first in ("agent", "caller"):
            before, truth = conversation([(role, text) for role, text, _ in script], first)
            out = engine.refine(before, RefineConfig(cleanup=False, speaker_roles=True))
            roles = out.speaker_roles
            # Whatever the model said: the transcript's speakers, one of each role, or nothing.
            assert set(roles) <= set(before.speakers)
            assert sorted(roles.values()) in ([], ["agent", "customer"])
            assert out.details["speaker_roles_refused"] == (0 if roles else 1)
            assert bool(roles) or any(w.startswith("speaker roles:") for w in out.details["warnings"])
            # Roles alone never touch the text.
            assert out.segments == before.segments and out.speaker_names == {} and out.summary is None
            result = "refused" if not roles else ("right" if roles == truth else "wrong")
            outcomes[result] += 1
            print(f"\n{name}, {first} first: {roles or 'refused'} ({result}); {out.details['warnings']}")
    print(f"\nsmollm2-135m speaker roles over {sum(outcomes.values())} calls: {outcomes}")
    assert sum(outcomes.values()) == 4


def test_roles_with_cleanup_in_one_refine(engine: LlmCleanupEngine) -> None:
    before, _ = conversation([(role, text) for role, text, _ in _calls()["pii_call_en"]][:4], "agent")
    out = engine.refine(before, RefineConfig(speaker_roles=True))
    assert out.details["cleanup"] is True and "segments_cleaned" in out.details
    assert out.details["speaker_roles_refused"] in (0, 1)
    assert set(out.speaker_roles) <= {"speaker_0", "speaker_1"}
