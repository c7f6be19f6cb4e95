"""The emotions and events stages' pure parts: where they sit in the DAG, how frame
probabilities become events, how emotion2vec's classes read, and how merge and the
ElevenLabs response carry both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.emotion2vec.engine import MIN_SEGMENT_S, clip_of, emotion_of, label_of
from engines.merge.enrichment import apply_enrichment
from engines.panns_events.events import event_columns, find_events, read_labels
from orchestrator.dag import JobSpec, build_dag
from shared.audio_events import EVENT_TYPES
from shared.catalogue import SpeakerDetection, Stage
from shared.contracts import (
    EmotionsConfig,
    EmotionsOutput,
    EnrichOptions,
    EventsConfig,
    EventsOutput,
    JobParameters,
    SegmentEmotion,
)
from shared.formats.elevenlabs import ResponseOptions, to_response
from shared.transcript import AudioEvent, Emotion, Segment, Transcript, Word

FRAME_RATE = 100.0


def spec(mode: SpeakerDetection = SpeakerDetection.NONE, **enrich: bool) -> JobSpec:
    return JobSpec(model="tiny.en", speaker_detection=mode, parameters=JobParameters(enrich=EnrichOptions(**enrich)))


def test_events_run_beside_the_transcriber_and_emotions_after_it() -> None:
    nodes = {n.name: n for n in build_dag(spec(SpeakerDetection.DIARIZE, detect_emotions=True, detect_events=True))}
    assert nodes["events"].depends_on == ("prepare",)
    assert nodes["events"].stage == Stage.EVENTS and nodes["events"].engine_id == "panns-events"
    assert nodes["events"].config == EventsConfig()
    assert set(nodes["emotions"].depends_on) == {"prepare", "transcribe", "diarize"}
    assert nodes["emotions"].engine_id == "emotion2vec" and nodes["emotions"].config == EmotionsConfig()
    # Optional: a failure leaves the transcript and a warning.
    assert not nodes["events"].required and not nodes["emotions"].required
    assert {"events", "emotions"} <= set(nodes["merge"].depends_on)


def test_no_audio_enrichment_unless_asked() -> None:
    assert {n.name for n in build_dag(spec())} == {"prepare", "transcribe", "merge"}


# --- events ----------------------------------------------------------------------------


def _labels(tmp_path: Path) -> Path:
    """An AudioSet-shaped label file: our events' classes among filler classes."""
    mids = ["/m/09x0r"] + [m for t in EVENT_TYPES.values() for m in t.mids] + [f"/x/{i}" for i in range(400)]
    path = tmp_path / "class_labels_indices.csv"
    lines = ["index,mid,display_name"] + [f'{i},{mid},"class {i}"' for i, mid in enumerate(mids)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_labels_map_event_types_to_model_columns(tmp_path: Path) -> None:
    mids = read_labels(_labels(tmp_path))
    columns = event_columns(mids)
    assert set(columns) == set(EVENT_TYPES)
    assert [mids[c] for c in columns["laughter"]] == list(EVENT_TYPES["laughter"].mids)
    # A label file with only some of the classes yields only those events.
    assert event_columns(["/m/09x0r", "/m/028ght"]) == {"applause": [1]}


def test_a_file_that_is_not_audiosets_labels_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_text("name,score\nlaugh,1\n")
    with pytest.raises(ValueError, match="class_labels_indices"):
        read_labels(bad)


def _scores(seconds: float, *bursts: tuple[int, float, float, float]) -> np.ndarray:
    frames = np.zeros((int(seconds * FRAME_RATE), 3), dtype=np.float32)
    for column, start, end, value in bursts:
        frames[int(start * FRAME_RATE) : int(end * FRAME_RATE), column] = value
    return frames


def test_a_burst_above_threshold_is_one_event_with_its_times() -> None:
    probs = _scores(10, (0, 2.0, 3.5, 0.9))
    events = find_events(probs, FRAME_RATE, {"laughter": [0, 1]}, threshold=0.5, min_duration_s=0.2)
    assert [(e.type, e.start, e.end, e.confidence) for e in events] == [("laughter", 2.0, 3.5, 0.9)]


def test_hysteresis_keeps_a_dipping_event_whole_and_extends_to_its_shoulders() -> None:
    # Onset at 0.5, held while ≥ 0.25: the 0.3 shoulders belong to the event, the dip does not split it.
    probs = _scores(10, (0, 1.0, 1.5, 0.3), (0, 1.5, 2.0, 0.8), (0, 2.0, 2.2, 0.3), (0, 2.2, 3.0, 0.7), (0, 3.0, 3.4, 0.3))
    events = find_events(probs, FRAME_RATE, {"laughter": [0]}, threshold=0.5, min_duration_s=0.2)
    assert [(e.start, e.end) for e in events] == [(1.0, 3.4)]


def test_close_spans_merge_short_ones_drop_and_weak_ones_never_start() -> None:
    probs = _scores(
        20,
        (0, 1.0, 2.0, 0.9),
        (0, 2.2, 3.0, 0.9),  # 0.2 s after the first: one event
        (0, 8.0, 8.1, 0.9),  # 0.1 s: shorter than min_duration
        (0, 12.0, 15.0, 0.4),  # never reaches the onset
        (2, 5.0, 6.0, 0.6),
    )
    events = find_events(probs, FRAME_RATE, {"laughter": [0], "music": [2]}, threshold=0.5, min_duration_s=0.2)
    assert [(e.type, e.start, e.end) for e in events] == [("laughter", 1.0, 3.0), ("music", 5.0, 6.0)]


def test_an_event_takes_the_strongest_of_its_classes() -> None:
    probs = _scores(5, (0, 1.0, 2.0, 0.6), (1, 1.5, 2.5, 0.95))
    (event,) = find_events(probs, FRAME_RATE, {"laughter": [0, 1]}, threshold=0.5, min_duration_s=0.2)
    assert (event.start, event.end, event.confidence) == (1.0, 2.5, 0.95)


# --- emotions --------------------------------------------------------------------------


def test_emotion2vec_labels_read_as_english_ids() -> None:
    assert label_of("生气/angry") == "angry"
    assert label_of("中立/neutral") == "neutral"
    assert label_of("<unk>") == "unknown"
    emotion = emotion_of(["生气/angry", "开心/happy", "中立/neutral", "<unk>"], [0.1, 0.7, 0.15, 0.05])
    assert (emotion.label, emotion.confidence) == ("happy", 0.7)
    assert emotion.scores == {"angry": 0.1, "happy": 0.7, "neutral": 0.15, "unknown": 0.05}


def test_segment_clips_skip_slivers_and_bound_long_segments() -> None:
    audio = np.arange(16000 * 100, dtype=np.float32)
    clip = clip_of(audio, Segment(id=0, start=1.0, end=3.0, text="x"))
    assert clip is not None and len(clip) == 2 * 16000 and clip[0] == 16000
    assert clip_of(audio, Segment(id=1, start=5.0, end=5.0 + MIN_SEGMENT_S / 2, text="x")) is None
    long = clip_of(audio, Segment(id=2, start=10.0, end=80.0, text="x"))
    assert long is not None and len(long) == 30 * 16000


# --- merge and the ElevenLabs response ---------------------------------------------------


def _transcript() -> Transcript:
    def words(speaker: str, start: float, *texts: str) -> list[Word]:
        return [Word(text=t, start=start + i * 0.5, end=start + i * 0.5 + 0.4, speaker=speaker) for i, t in enumerate(texts)]

    first, second = words("A", 0.0, "that", "is", "funny"), words("B", 3.0, "I", "know")
    segments = [
        Segment(id=0, start=0.0, end=1.4, text="that is funny", words=first, speaker="A"),
        Segment(id=1, start=3.0, end=3.9, text="I know", words=second, speaker="B"),
    ]
    return Transcript(
        text="that is funny I know",
        language="en",
        language_probability=1.0,
        duration=5.0,
        segments=segments,
        words=first + second,
        speakers=["A", "B"],
        model="tiny.en",
    )


def test_merge_puts_emotions_on_segments_and_events_with_their_speaker() -> None:
    happy = Emotion(label="happy", confidence=0.8, scores={"happy": 0.8, "neutral": 0.2})
    merged = apply_enrichment(
        _transcript(),
        emotions=EmotionsOutput(segments=[SegmentEmotion(segment=0, emotion=happy)], details={"engine_id": "emotion2vec"}),
        events=EventsOutput(
            events=[
                AudioEvent(type="laughter", start=1.2, end=2.0, confidence=0.9),
                AudioEvent(type="music", start=4.2, end=5.0, confidence=0.7),
            ],
            details={"engine_id": "panns-events"},
        ),
    )
    assert merged.segments[0].emotion == happy and merged.segments[1].emotion is None
    assert [(e.type, e.speaker) for e in merged.audio_events or []] == [("laughter", "A"), ("music", None)]
    assert [(s.stage, s.engine_id) for s in merged.stages] == [("emotions", "emotion2vec"), ("events", "panns-events")]
    assert apply_enrichment(_transcript()).audio_events is None


def test_elevenlabs_words_carry_audio_events_in_time_order() -> None:
    merged = apply_enrichment(
        _transcript(),
        events=EventsOutput(events=[AudioEvent(type="laughter", start=1.2, end=2.5, confidence=0.9)], details={}),
    )
    words = to_response(merged, ResponseOptions(), transcription_id="t")["words"]
    entries = [(w["text"], w["type"], w["speaker_id"]) for w in words if w["type"] != "spacing"]
    assert entries == [
        ("that", "word", "speaker_0"),
        ("is", "word", "speaker_0"),
        ("funny", "word", "speaker_0"),
        ("(laughter)", "audio_event", "speaker_0"),
        ("I", "word", "speaker_1"),
        ("know", "word", "speaker_1"),
    ]
    assert [w["type"] for w in words[5:8]] == ["spacing", "audio_event", "spacing"]
    event = words[6]
    assert (event["start"], event["end"], event["logprob"]) == (1.2, 2.5, 0.0)
    # tag_audio_events=false: the words alone, as before.
    untagged = to_response(merged, ResponseOptions(tag_audio_events=False), transcription_id="t")["words"]
    assert "audio_event" not in {w["type"] for w in untagged}


def test_speaker_names_reach_audio_events() -> None:
    from gateway.stored_jobs import with_speaker_names

    laugh = AudioEvent(type="laughter", start=1.2, end=2.0, confidence=0.9, speaker="A")
    named = with_speaker_names(_transcript().model_copy(update={"audio_events": [laugh]}), {"A": "Margaret"})
    assert [e.speaker for e in named.audio_events or []] == ["Margaret"]
    assert with_speaker_names(_transcript(), {"A": "Margaret"}).audio_events is None
