"""Speaker assignment in merge: overlap, nearest turn for gaps, splits, no word lost."""

from engines.assembly import assemble
from engines.merge.speakers import assign_speakers, speaker_at
from shared.contracts import DiarizeOutput, PrepareOutput, SpeakerTurn, TranscribeOutput
from shared.transcript import Segment, Word

TURNS = [SpeakerTurn(speaker="speaker_0", start=0.0, end=2.0), SpeakerTurn(speaker="speaker_1", start=3.0, end=5.0)]


def w(text: str, start: float, end: float) -> Word:
    return Word(text=text, start=start, end=end, probability=0.9)


def test_word_takes_the_turn_it_overlaps_most() -> None:
    assert speaker_at(1.8, 3.5, TURNS) == "speaker_1"  # 0.2 s vs 0.5 s of overlap
    assert speaker_at(0.5, 0.9, TURNS) == "speaker_0"


def test_word_in_a_gap_takes_the_nearest_turn() -> None:
    assert speaker_at(2.1, 2.3, TURNS) == "speaker_0"
    assert speaker_at(2.7, 2.9, TURNS) == "speaker_1"
    assert speaker_at(9.0, 9.5, TURNS) == "speaker_1"
    assert speaker_at(1.0, 2.0, []) is None


def test_segment_is_split_where_the_speaker_changes_and_no_word_is_dropped() -> None:
    words = [w("hello", 0.2, 0.6), w("there", 0.7, 1.2), w("hi", 3.1, 3.4), w("you", 3.5, 3.9), w("ok", 4.2, 4.4)]
    segment = Segment(id=0, start=0.0, end=4.5, text="hello there hi you ok", words=words, avg_logprob=-0.2, tokens=[1, 2, 3])
    out = assign_speakers([segment], TURNS)
    assert [(s.id, s.speaker, s.text) for s in out] == [(0, "speaker_0", "hello there"), (1, "speaker_1", "hi you ok")]
    assert (out[0].start, out[0].end, out[1].start, out[1].end) == (0.0, 1.2, 3.1, 4.5)
    assert [x.text for s in out for x in s.words] == [x.text for x in words]
    assert all(x.speaker == s.speaker for s in out for x in s.words)
    assert out[1].avg_logprob == -0.2 and out[1].tokens == []


def test_assemble_fills_speakers_from_the_diarization() -> None:
    prepare = PrepareOutput(audio_key="a", channel_keys=["a"], duration=5.0, channels=1, original_sample_rate=16000)
    segment = Segment(id=0, start=0.0, end=4.0, text="a b", words=[w("a", 0.1, 0.5), w("b", 3.2, 3.6)])
    transcribed = TranscribeOutput(language="en", language_probability=1.0, duration=5.0, segments=[segment], model="tiny.en")
    diarized = DiarizeOutput(turns=TURNS, num_speakers=2, duration=5.0, details={"engine_id": "diarize-default"})
    t = assemble(prepare, [transcribed], diarized=diarized, warnings=["align (phoneme-align) failed, continuing without it: x"])
    assert t.speakers == ["speaker_0", "speaker_1"]
    assert [x.speaker for x in t.words] == ["speaker_0", "speaker_1"]
    assert len(t.segments) == 2
    assert [s.stage for s in t.stages] == ["prepare", "transcribe", "diarize"]
    assert t.warnings == ["align (phoneme-align) failed, continuing without it: x"]
