"""The speaker-diarization dev set (tests/fixtures/diarize_dev) is whole and its truth is sound:
files listed, RTTMs well formed and inside their audio, speaker counts as the manifest says, and
both splits covering 2, 3 and 4 speakers. No model runs here."""

from __future__ import annotations

import json
from typing import Any

import pytest
import soundfile as sf
from diarization import DEV_SET, dev_set, read_rttm

MANIFEST: dict[str, Any] = json.loads((DEV_SET / "manifest.json").read_text())
RECORDINGS: list[dict[str, Any]] = MANIFEST["recordings"]


def test_manifest_lists_enough_distinct_recordings() -> None:
    names = [r["name"] for r in RECORDINGS]
    assert len(names) >= 10 and len(set(names)) == len(names)
    assert {r["split"] for r in RECORDINGS} == {"tune", "heldout"}
    assert 0.25 <= len(dev_set("heldout")) / len(RECORDINGS) <= 0.45


@pytest.mark.parametrize("rec", RECORDINGS, ids=[r["name"] for r in RECORDINGS])
def test_recording_files_and_truth_agree(rec: dict[str, Any]) -> None:
    name = rec["name"]
    info = sf.info(str(DEV_SET / f"{name}.flac"))
    assert (info.format, info.samplerate, info.channels) == ("FLAC", 16000, 1)
    assert info.duration == pytest.approx(rec["duration_s"], abs=0.01)
    assert (DEV_SET / f"{name}.txt").exists() == rec["text"]

    lines = (DEV_SET / f"{name}.rttm").read_text().splitlines()
    for line in lines:
        fields = line.split()
        assert len(fields) == 10 and fields[:3] == ["SPEAKER", name, "1"], line
        assert fields[5:7] == ["<NA>", "<NA>"] and fields[8:] == ["<NA>", "<NA>"], line
        assert float(fields[4]) > 0, line
    turns = read_rttm(DEV_SET / f"{name}.rttm")
    assert len(turns) == len(lines) == rec["turns"]
    assert all(0 <= t.start < t.end <= info.duration for t in turns)

    speakers = sorted({t.speaker for t in turns})
    assert speakers == rec["speakers"] and len(speakers) == rec["num_speakers"]
    assert 2 <= rec["num_speakers"] <= 4
    kinds = {MANIFEST["speakers"][s]["kind"] for s in speakers}
    assert rec["kind"] == (kinds.pop() if len(kinds) == 1 else "mixed")


def test_both_splits_cover_two_three_and_four_speakers() -> None:
    for split in ("tune", "heldout"):
        assert {r["num_speakers"] for r in dev_set(split)} == {2, 3, 4}, split


def test_held_out_recordings_have_real_and_synthetic_speech() -> None:
    kinds = {MANIFEST["speakers"][s]["kind"] for r in dev_set("heldout") for s in r["speakers"]}
    assert kinds == {"real", "synthetic"}


def test_turns_and_gaps_span_the_range_asked_for() -> None:
    lengths = [t.end - t.start for r in RECORDINGS for t in read_rttm(DEV_SET / f"{r['name']}.rttm")]
    assert min(lengths) < 2.0 and max(lengths) > 20.0
    gaps = []
    for r in RECORDINGS:
        turns = read_rttm(DEV_SET / f"{r['name']}.rttm")
        gaps += [b.start - a.end for a, b in zip(turns, turns[1:])]
    assert any(0.1 <= g <= 0.3 for g in gaps)  # a quick reply
    assert any(-1.0 < g < 0 for g in gaps)  # a short overlap
