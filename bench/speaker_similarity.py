"""How alike the default diarizer's voiceprints are for the same voice and for different voices,
to choose `speaker_match_threshold` (DALSTON_SPEAKER_MATCH_THRESHOLD).

    .venv/bin/python bench/speaker_similarity.py

Enrollment voiceprints come from the known-speaker samples (tests/fixtures/speaker_*_en.wav,
made by make_known_speakers.py) the way POST /v1/speakers makes them: the sample diarized
with no count, the longest speaker's voiceprint. Found voiceprints come from diarizing each
recording with truth (NAME.rttm) with its true count, each found speaker named after the
true speaker it overlaps most. Every found voiceprint is compared with every enrollment
voiceprint: pairs of one voice ("same") and of two ("different"). Recordings whose voices
were never enrolled (the espeak-ng conversation) only add "different" pairs.

With the diarization dev set (tests/fixtures/diarize_dev, manifest.json), the same is done
across its recordings: every recording diarized with its true count, each found speaker
that is mostly one true speaker gives that speaker a voiceprint, and the voiceprints of
different recordings are compared — the same person heard in two recordings ("same") or two
people ("different"), real voices (package-shipped recordings of people) apart from
synthetic ones, and pairs involving a held-out recording apart from the rest.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.diarize_eval import read_rttm  # noqa: E402
from engines.diarize_default.engine import DefaultDiarizerEngine  # noqa: E402
from shared.audio import decode  # noqa: E402
from shared.contracts import SpeakerOptions, SpeakerTurn, Voiceprint  # noqa: E402
from shared.settings import get_settings  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
DEV = FIXTURES / "diarize_dev"
RECORDINGS = ("meeting_en", "duo_en", "conversation_en")
PURITY = 0.8  # a found speaker speaks for a true one when that one has this share of its overlap


def mono(path: Path) -> np.ndarray:
    audio, _ = decode(path)
    return np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32)


def overlap(found: list[SpeakerTurn], truth: list[SpeakerTurn], speaker: str, true_speaker: str) -> float:
    return sum(
        max(0.0, min(a.end, b.end) - max(a.start, b.start))
        for a in found
        if a.speaker == speaker
        for b in truth
        if b.speaker == true_speaker
    )


def main() -> None:
    settings = get_settings()
    engine = DefaultDiarizerEngine(settings)
    engine.load()

    enrolled: dict[str, Voiceprint] = {}
    for path in sorted(FIXTURES.glob("speaker_*_en.wav")):
        voice = path.stem.removeprefix("speaker_").removesuffix("_en")
        _, _, found = engine.diarize_with_voices(mono(path), SpeakerOptions())
        if not found:
            print(f"{path.name}: no voiceprint (no speech)")
            continue
        longest = max(found.values(), key=lambda v: v.speech_seconds)
        if longest.speech_seconds < settings.speaker_min_speech_s:
            print(f"{path.name}: {longest.speech_seconds:.1f} s of speech, too little to enroll")
            continue
        enrolled[voice] = longest
    names = list(enrolled)
    print("enrollment vs enrollment:")
    for a in names:
        print(f"  {a:6s} " + " ".join(f"{b}={float(np.dot(enrolled[a].embedding, enrolled[b].embedding)):.3f}" for b in names))

    same: list[tuple[str, float]] = []
    different: list[tuple[str, float]] = []
    for name in RECORDINGS:
        truth = read_rttm(FIXTURES / f"{name}.rttm")
        true_speakers = sorted({t.speaker for t in truth})
        turns, _, found = engine.diarize_with_voices(
            mono(FIXTURES / f"{name}.wav"), SpeakerOptions(num_speakers=len(true_speakers))
        )
        print(f"{name}: {len(true_speakers)} voices, {len(found)} found")
        for speaker, print_ in found.items():
            who = max(true_speakers, key=lambda t: overlap(turns, truth, speaker, t))
            for voice, reference in enrolled.items():
                score = float(np.dot(print_.embedding, reference.embedding))
                label = f"{name}:{who}({speaker}, {print_.speech_seconds:.1f} s) vs {voice}"
                (same if who == voice else different).append((label, score))
                print(f"  {label}: {score:.3f}{'  same' if who == voice else ''}")

    summarise("known-speaker fixtures", same, different, settings.speaker_match_threshold)
    if (DEV / "manifest.json").is_file():
        dev_set(engine, settings.speaker_match_threshold)


def summarise(title: str, same: list[tuple[str, float]], different: list[tuple[str, float]], threshold: float) -> None:
    print(f"== {title}")
    if not same or not different:
        print(f"  {len(same)} same-voice and {len(different)} different-voice pairs: nothing to compare")
        return
    low = min(score for _, score in same)
    high = max(score for _, score in different)
    print(f"  same voice: {len(same)} pairs, min {low:.3f}, mean {np.mean([s for _, s in same]):.3f}")
    print(f"  different voices: {len(different)} pairs, max {high:.3f}, mean {np.mean([s for _, s in different]):.3f}")
    missed = [label for label, score in same if score < threshold]
    confused = [label for label, score in different if score >= threshold]
    print(f"  margin {low - high:+.3f}; midpoint {(low + high) / 2:.3f}; at the setting {threshold}:")
    print(
        f"  same voice below it {len(missed)}/{len(same)} {missed[:5]}; different voices at or above it {len(confused)}/{len(different)} {confused[:5]}"
    )


def dev_set(engine: DefaultDiarizerEngine, threshold: float) -> None:
    manifest = json.loads((DEV / "manifest.json").read_text())
    kinds = {name: info["kind"] for name, info in manifest["speakers"].items()}
    prints: list[tuple[str, str, bool, Voiceprint]] = []  # recording, true speaker, held out, voiceprint
    for recording in manifest["recordings"]:
        name = recording["name"]
        truth = read_rttm(DEV / f"{name}.rttm")
        true_speakers = sorted({t.speaker for t in truth})
        turns, _, found = engine.diarize_with_voices(mono(DEV / f"{name}.flac"), SpeakerOptions(num_speakers=len(true_speakers)))
        for speaker, print_ in found.items():
            shares = {t: overlap(turns, truth, speaker, t) for t in true_speakers}
            who = max(shares, key=shares.__getitem__)
            total = sum(shares.values())
            if total and shares[who] / total >= PURITY:
                prints.append((name, who, recording["split"] == "heldout", print_))
    for kind in ("real", "synthetic"):
        for held_out in (False, True):
            same: list[tuple[str, float]] = []
            different: list[tuple[str, float]] = []
            for i, (rec_a, who_a, out_a, a) in enumerate(prints):
                for rec_b, who_b, out_b, b in prints[i + 1 :]:
                    if rec_a == rec_b or kinds[who_a] != kind or kinds[who_b] != kind or (out_a or out_b) != held_out:
                        continue
                    score = float(np.dot(a.embedding, b.embedding))
                    (same if who_a == who_b else different).append((f"{rec_a}:{who_a} vs {rec_b}:{who_b}", score))
            split = "pairs with a held-out recording" if held_out else "tuning recordings only"
            summarise(f"dev set, {kind} voices across recordings, {split}", same, different, threshold)


if __name__ == "__main__":
    main()
