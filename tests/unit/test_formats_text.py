"""SRT, WebVTT and TXT renderings of the canonical transcript."""

from __future__ import annotations

import re

import pytest

from shared.formats.text import build_cues, srt_timestamp, to_json, to_srt, to_txt, to_vtt, vtt_timestamp
from shared.transcript import AudioEvent, Segment, Transcript, Word

SENTENCE = "the quick brown fox jumps over the lazy dog while speech recognition turns spoken words into written text".split()


def transcript(speakers: bool = False, words: bool = True) -> Transcript:
    ws = [
        Word(
            text=w,
            start=round(i * 0.4, 3),
            end=round(i * 0.4 + 0.3, 3),
            probability=0.9,
            speaker=("speaker_0" if i < 9 else "speaker_1") if speakers else None,
        )
        for i, w in enumerate(SENTENCE)
    ]
    segments = [
        Segment(id=0, start=0.0, end=ws[8].end, text=" ".join(SENTENCE[:9]), words=ws[:9] if words else []),
        Segment(id=1, start=ws[9].start, end=ws[-1].end, text=" ".join(SENTENCE[9:]), words=ws[9:] if words else []),
    ]
    return Transcript(
        text=" ".join(SENTENCE), language="en", language_probability=0.9, duration=8.0, segments=segments,
        words=ws, speakers=["speaker_0", "speaker_1"] if speakers else [], model="tiny.en",
    )  # fmt: skip


SRT_CUE = re.compile(r"^(\d+)\n(\d\d:\d\d:\d\d,\d\d\d) --> (\d\d:\d\d:\d\d,\d\d\d)\n((?:.+\n?)+)$")


def parse_srt(body: str) -> list[tuple[int, str, str, list[str]]]:
    assert body.endswith("\n") and "\n\n\n" not in body
    cues = []
    for block in body.strip("\n").split("\n\n"):
        match = SRT_CUE.match(block)
        assert match, f"not an SRT cue: {block!r}"
        cues.append((int(match[1]), match[2], match[3], match[4].strip("\n").split("\n")))
    return cues


def seconds(stamp: str) -> float:
    h, m, rest = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(rest)


@pytest.mark.parametrize(("max_line_chars", "max_lines"), [(42, 2), (20, 1), (12, 3), (5, 2)])
def test_srt_is_valid_and_respects_line_limits(max_line_chars, max_lines) -> None:
    cues = parse_srt(to_srt(transcript(), max_line_chars=max_line_chars, max_lines=max_lines))
    assert [n for n, *_ in cues] == list(range(1, len(cues) + 1))
    previous_end = 0.0
    for _, start, end, lines in cues:
        assert previous_end <= seconds(start) <= seconds(end)
        previous_end = seconds(end)
        assert 1 <= len(lines) <= max_lines
        # A line only exceeds the limit when it is one word longer than the limit.
        assert all(len(line) <= max_line_chars or " " not in line for line in lines)
    # Nothing lost, nothing reordered.
    assert " ".join(" ".join(lines) for *_, lines in cues).split() == SENTENCE


def test_cues_start_at_segment_boundaries_and_take_word_times() -> None:
    cues = parse_srt(to_srt(transcript()))
    assert cues[0][1] == "00:00:00,000" and cues[0][3] == ["the quick brown fox jumps over the lazy", "dog"]
    assert cues[1][1] == "00:00:03,600" and cues[1][3][0].startswith("while")


def test_speaker_labels_and_speaker_changes() -> None:
    srt = parse_srt(to_srt(transcript(speakers=True)))
    assert srt[0][3][0].startswith("[speaker_0] the") and srt[1][3][0].startswith("[speaker_1] while")
    assert "[speaker" not in to_srt(transcript(speakers=True), include_speakers=False)
    assert "[speaker" not in to_srt(transcript())  # no speakers, no labels

    vtt = to_vtt(transcript(speakers=True))
    assert "<v speaker_0>the quick" in vtt and "<v speaker_1>while" in vtt


def test_speaker_change_inside_a_segment_starts_a_cue() -> None:
    t = transcript(speakers=True)
    merged = Segment(id=0, start=0.0, end=t.words[-1].end, text=t.text, words=t.words)
    cues = build_cues(t.model_copy(update={"segments": [merged]}), max_line_chars=200)
    assert [(c.speaker, c.words[0]) for c in cues] == [("speaker_0", "the"), ("speaker_1", "while")]


def test_duration_characters_and_silence_limits() -> None:
    t = transcript()
    for cue in build_cues(t, max_line_chars=200, max_segment_duration_s=1.0):
        assert cue.end - cue.start <= 1.0
    for cue in build_cues(t, max_line_chars=200, max_segment_chars=15):
        assert len(cue.text) <= 15 or len(cue.words) == 1
    gap = t.model_copy(deep=True)
    for w in gap.segments[0].words[4:]:
        w.start, w.end = w.start + 2.0, w.end + 2.0
    cues = build_cues(gap, max_line_chars=200, segment_on_silence_longer_than_s=0.8)
    assert cues[0].words == SENTENCE[:4]


def test_segments_without_word_times_are_still_cut() -> None:
    cues = parse_srt(to_srt(transcript(words=False), max_line_chars=20, max_lines=1))
    assert len(cues) > 2 and all(len(lines[0]) <= 20 for *_, lines in cues)
    assert seconds(cues[0][1]) == 0.0 and seconds(cues[-1][2]) == pytest.approx(transcript().segments[1].end, abs=0.001)


def test_vtt_header_timestamps_and_escaping() -> None:
    t = transcript()
    t.segments[0].words[0].text = "<b>&"
    vtt = to_vtt(t)
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> ")
    assert "&lt;b&gt;&amp;" in vtt and "<b>" not in vtt
    assert all(
        re.match(r"^\d\d:\d\d:\d\d\.\d\d\d --> \d\d:\d\d:\d\d\.\d\d\d$", line) for line in vtt.splitlines() if "-->" in line
    )


def test_audio_events_are_subtitle_cues_of_their_own() -> None:
    t = transcript(speakers=True).model_copy(
        update={"audio_events": [AudioEvent(type="laughter", start=3.7, end=4.5, confidence=0.9, speaker="speaker_0")]}
    )
    cues = parse_srt(to_srt(t))
    assert [c[0] for c in cues] == list(range(1, len(cues) + 1))
    (event,) = [c for c in cues if c[3] == ["(laughter)"]]  # no speaker label on a sound
    assert (seconds(event[1]), seconds(event[2])) == (3.7, 4.5)
    assert [seconds(c[1]) for c in cues] == sorted(seconds(c[1]) for c in cues)
    assert "00:00:03.700 --> 00:00:04.500\n(laughter)\n" in to_vtt(t)
    assert "(laughter)" not in to_srt(transcript(speakers=True))


def test_timestamps() -> None:
    assert srt_timestamp(0) == "00:00:00,000"
    assert srt_timestamp(3661.2345) == "01:01:01,234"
    assert vtt_timestamp(59.9996) == "00:01:00.000"
    assert srt_timestamp(-0.01) == "00:00:00,000"


def test_txt() -> None:
    assert to_txt(transcript()) == " ".join(SENTENCE) + "\n"
    assert to_txt(transcript(speakers=True)).splitlines() == [
        "speaker_0: " + " ".join(SENTENCE[:9]),
        "speaker_1: " + " ".join(SENTENCE[9:]),
    ]
    assert to_txt(transcript(speakers=True), include_speakers=False) == " ".join(SENTENCE) + "\n"
    lines = to_txt(transcript(), include_timestamps=True).splitlines()
    assert lines[1] == "[00:00:03.600 --> 00:00:07.100] " + " ".join(SENTENCE[9:])
    empty = transcript().model_copy(update={"text": "", "segments": [], "words": []})
    assert to_txt(empty) == "" and to_srt(empty) == "" and to_vtt(empty) == "WEBVTT\n"


def test_json_is_the_canonical_transcript() -> None:
    t = transcript(speakers=True)
    assert Transcript.model_validate(to_json(t)) == t


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        to_srt(transcript(), max_line_chars=0)
