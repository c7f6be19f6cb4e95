"""The panns-events and emotion2vec engines' loading and processing code on a real store.

No trained weights for either can be had here (nothing downloads them at run time), so:
- panns-events runs its real loading code on a checkpoint in the PANNs format whose weights are
  random (the architecture, the state-dict keys, the label file, windowed scoring and the event
  contract are all real; the events it finds mean nothing and are not asserted on);
- both engines' refusals (nothing configured, an incomplete directory, a wrong checkpoint,
  the extra not installed) are checked for the message an operator needs;
- the quality tests run only where trained weights are configured:
  DALSTON_TEST_EVENTS_MODEL / DALSTON_TEST_EMOTION_MODEL (the same layouts the engines take).
"""

from __future__ import annotations

import importlib.util
import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engines.base import EngineError
from shared.audio import probe
from shared.audio_events import EVENT_TYPES
from shared.contracts import EmotionsOutput, EventsOutput, PrepareOutput, TaskMessage, TranscribeOutput
from shared.settings import Settings
from shared.storage import FileStore
from shared.transcript import Segment

FIXTURES = Path(__file__).parent.parent / "fixtures"
EMOTIONS = {"angry", "disgusted", "fearful", "happy", "neutral", "other", "sad", "surprised", "unknown"}


def _task(stage: str, engine_id: str, audio_key: str, inputs: dict[str, str] | None = None) -> TaskMessage:
    return TaskMessage(
        task_id=f"t-{stage}",
        job_id="job1",
        name=stage,
        stage=stage,
        engine_id=engine_id,
        attempt=1,
        audio_key=audio_key,
        inputs=inputs or {},
        output_prefix=f"jobs/job1/tasks/{stage}/",
        config={"kind": stage},
    )


def _labels(directory: Path) -> None:
    mids = ["/m/09x0r"] + [m for t in EVENT_TYPES.values() for m in t.mids]
    mids += [f"/x/{i}" for i in range(527 - len(mids))]
    lines = ["index,mid,display_name"] + [f'{i},{mid},"class {i}"' for i, mid in enumerate(mids)]
    (directory / "class_labels_indices.csv").write_text("\n".join(lines) + "\n")


# --- panns-events ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def panns_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # The engine gives panns_inference its label file under ~/panns_data: keep that in the test's tree.
    pytest.importorskip("panns_inference", reason="the `events` extra is not installed: pip install -e '.[events]'")
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def random_panns_dir(panns_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PANNs-format model directory: Cnn14_DecisionLevelMax with random weights (fp16, 160 MB)."""
    import torch

    directory = tmp_path_factory.mktemp("panns")
    _labels(directory)
    from engines.panns_events.engine import _place_labels_for_panns

    _place_labels_for_panns(directory / "class_labels_indices.csv")
    from panns_inference.models import Cnn14_DecisionLevelMax

    torch.manual_seed(0)
    model = Cnn14_DecisionLevelMax(
        sample_rate=32000, window_size=1024, hop_size=320, mel_bins=64, fmin=50, fmax=14000, classes_num=527
    )
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save({"model": state, "iteration": 0}, directory / "Cnn14_DecisionLevelMax_random.pth")
    return directory


def _events(engine, tmp_path: Path, fixture: str) -> EventsOutput:
    store = FileStore(tmp_path / "store")
    audio_key = f"jobs/job1/audio/{fixture}"
    store.put_file(audio_key, FIXTURES / fixture)
    work = tmp_path / "work"
    work.mkdir()
    key = engine.process(_task("events", "panns-events", audio_key), store, work)
    return EventsOutput.model_validate_json(store.get_bytes(key))


def test_panns_events_loads_a_panns_checkpoint_and_scores_a_whole_file(random_panns_dir: Path, tmp_path: Path) -> None:
    from engines.panns_events.engine import FRAME_RATE, SAMPLE_RATE, PannsEventsEngine
    from shared.audio import decode

    engine = PannsEventsEngine(Settings(events_model=str(random_panns_dir)))
    engine.load()
    audio, _ = decode(FIXTURES / "long_en.wav", target_rate=SAMPLE_RATE)
    # long_en.wav is longer than one scoring window: every frame of every window comes back.
    assert len(audio) > 30 * SAMPLE_RATE
    framewise = engine.framewise(audio.mean(axis=1))
    assert framewise.shape == (math.ceil(len(audio) / (SAMPLE_RATE / FRAME_RATE)), 527)
    assert 0.0 <= framewise.min() and framewise.max() <= 1.0

    output = _events(engine, tmp_path, "speech_en.wav")
    duration = probe(FIXTURES / "speech_en.wav").duration
    assert output.details["engine_id"] == "panns-events" and output.details["model"] == "Cnn14_DecisionLevelMax_random.pth"
    for event in output.events:  # random weights: what is found means nothing, its shape must hold
        assert event.type in EVENT_TYPES and 0.0 <= event.start < event.end <= duration + 0.05
    assert output.events == sorted(output.events, key=lambda e: (e.start, e.end, e.type))


def test_panns_events_says_what_is_missing(panns_home: Path, tmp_path: Path) -> None:
    from engines.panns_events.engine import PannsEventsEngine

    def refusal(events_model: str | None) -> str:
        with pytest.raises(EngineError) as caught:
            PannsEventsEngine(Settings(events_model=events_model)).model()
        assert caught.value.retryable is False
        return caught.value.message

    assert "DALSTON_EVENTS_MODEL" in refusal(None)
    assert "does not exist" in refusal(str(tmp_path / "nowhere"))
    assert "exactly one *.pth" in refusal(str(tmp_path))
    (tmp_path / "a.pth").write_bytes(b"")
    assert "class_labels_indices.csv" in refusal(str(tmp_path))
    _labels(tmp_path)
    import torch

    torch.save({"model": {"fc.weight": torch.zeros(2, 2)}}, tmp_path / "a.pth")
    assert "cannot load" in refusal(str(tmp_path))
    (tmp_path / "b.pth").write_bytes(b"")
    assert "found: a.pth, b.pth" in refusal(str(tmp_path))


@pytest.mark.skipif(
    not os.environ.get("DALSTON_TEST_EVENTS_MODEL"), reason="no trained PANNs weights (DALSTON_TEST_EVENTS_MODEL)"
)
def test_trained_panns_hears_no_events_in_plain_speech(panns_home: Path, tmp_path: Path) -> None:
    from engines.panns_events.engine import PannsEventsEngine

    engine = PannsEventsEngine(Settings(events_model=os.environ["DALSTON_TEST_EVENTS_MODEL"]))
    assert _events(engine, tmp_path, "speech_en.wav").events == []


# --- emotion2vec -------------------------------------------------------------------------


def test_emotion2vec_says_what_is_missing(tmp_path: Path) -> None:
    from engines.emotion2vec.engine import Emotion2vecEngine

    def refusal(emotion_model: str | None) -> str:
        with pytest.raises(EngineError) as caught:
            Emotion2vecEngine(Settings(emotion_model=emotion_model)).model()
        assert caught.value.retryable is False
        return caught.value.message

    assert "DALSTON_EMOTION_MODEL" in refusal(None)
    assert "no config.yaml, model.pt" in refusal(str(tmp_path))
    if importlib.util.find_spec("funasr") is None:
        (tmp_path / "config.yaml").write_text("model: Emotion2vec\n")
        (tmp_path / "model.pt").write_bytes(b"")
        assert "pip install 'dalston[emotion]'" in refusal(str(tmp_path))


@pytest.mark.skipif(
    not os.environ.get("DALSTON_TEST_EMOTION_MODEL"), reason="no emotion2vec+ weights (DALSTON_TEST_EMOTION_MODEL)"
)
def test_trained_emotion2vec_labels_every_spoken_segment(tmp_path: Path) -> None:
    from engines.emotion2vec.engine import Emotion2vecEngine
    from shared.audio import decode, write_wav

    store = FileStore(tmp_path / "store")
    audio, _ = decode(FIXTURES / "speech_en.wav")
    write_wav(tmp_path / "a.wav", audio[:, 0])
    store.put_file("a.wav", tmp_path / "a.wav")
    duration = len(audio) / 16000
    segments = [
        Segment(id=0, start=0.0, end=duration / 2, text="first"),
        Segment(id=1, start=duration / 2, end=duration, text="second"),
    ]
    prepared = PrepareOutput(audio_key="a.wav", channel_keys=["a.wav"], duration=duration, channels=1, original_sample_rate=16000)
    store.put_bytes("prep.json", prepared.model_dump_json().encode())
    transcribed = TranscribeOutput(language="en", language_probability=1.0, duration=duration, segments=segments, model="x")
    store.put_bytes("tx.json", transcribed.model_dump_json().encode())
    engine = Emotion2vecEngine(Settings(emotion_model=os.environ["DALSTON_TEST_EMOTION_MODEL"]))
    work = tmp_path / "work"
    work.mkdir()
    key = engine.process(
        _task("emotions", "emotion2vec", "a.wav", {"prepare": "prep.json", "transcribe": "tx.json"}), store, work
    )
    output = EmotionsOutput.model_validate_json(store.get_bytes(key))
    assert [s.segment for s in output.segments] == [0, 1]
    for s in output.segments:
        assert s.emotion.label in EMOTIONS and abs(sum(s.emotion.scores.values()) - 1.0) < 0.02
