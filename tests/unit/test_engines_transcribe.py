"""prepare → faster-whisper → merge run directly on a FileStore with the bundled tiny.en model."""

from __future__ import annotations

import re
from pathlib import Path

import jiwer
import pytest

from engines.base import EngineError
from engines.faster_whisper.engine import FasterWhisperEngine
from engines.merge.engine import MergeEngine
from engines.prepare.engine import PrepareEngine
from shared.contracts import PrepareOutput, TaskMessage, TranscribeOutput
from shared.settings import Settings
from shared.storage import FileStore
from shared.transcript import Transcript

FIXTURES = Path(__file__).parent.parent / "fixtures"
REFERENCE = (FIXTURES / "speech_en.txt").read_text()


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


@pytest.fixture(scope="module")
def whisper() -> FasterWhisperEngine:
    # tiny.en with greedy decoding mishears the espeak voice (WER ~0.35 even bare); beam 5 is ~0.2.
    engine = FasterWhisperEngine(Settings(whisper_beam_size=5))
    engine.load()
    return engine


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


def task(name: str, stage: str, engine_id: str, audio_key: str, inputs: dict[str, str] | None = None, **config) -> TaskMessage:
    return TaskMessage(
        task_id=f"t-{name}",
        job_id="job1",
        name=name,
        stage=stage,
        engine_id=engine_id,
        attempt=1,
        audio_key=audio_key,
        inputs=inputs or {},
        output_prefix=f"jobs/job1/tasks/{name}/",
        config=config,
    )


def workdir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / "work" / name
    path.mkdir(parents=True)
    return path


def upload(store: FileStore, fixture: str) -> str:
    key = f"jobs/job1/audio/original{Path(fixture).suffix}"
    store.put_file(key, FIXTURES / fixture)
    return key


def run_prepare(store: FileStore, tmp_path: Path, audio_key: str) -> tuple[str, PrepareOutput]:
    key = PrepareEngine().process(task("prepare", "prepare", "prepare", audio_key), store, workdir(tmp_path, "prepare"))
    return key, PrepareOutput.model_validate_json(store.get_bytes(key))


@pytest.mark.parametrize("fixture", ["speech_en.wav", "speech_en.mp3", "speech_en.ogg"])
def test_transcribes_speech(fixture: str, whisper: FasterWhisperEngine, store: FileStore, tmp_path: Path) -> None:
    audio_key = upload(store, fixture)
    prepare_key, prepared = run_prepare(store, tmp_path, audio_key)
    assert prepared.channels == 1 and prepared.channel_keys == [prepared.audio_key]
    assert prepared.duration == pytest.approx(11.9, abs=0.1)

    t = task("transcribe", "transcribe", "faster-whisper", audio_key, {"prepare": prepare_key}, model="tiny.en")
    key = whisper.process(t, store, workdir(tmp_path, "transcribe"))
    assert key == "jobs/job1/tasks/transcribe/output.json"
    out = TranscribeOutput.model_validate_json(store.get_bytes(key))

    text = " ".join(s.text for s in out.segments)
    assert jiwer.wer(normalise(REFERENCE), normalise(text)) <= 0.30
    assert out.language == "en" and out.model == "tiny.en"
    assert out.language_probability == 1.0  # English-only model: English by construction
    assert out.details["beam_size"] == 5 and out.details["realtime_factor"] > 0
    words = [w for s in out.segments for w in s.words]
    assert words and all(w.probability is not None and 0 <= w.probability <= 1 for w in words)
    assert all(0 <= w.start <= w.end <= out.duration + 0.01 for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))
    assert all(s.avg_logprob is not None and s.no_speech_prob is not None and s.tokens for s in out.segments)

    merge = task("merge", "merge", "merge", audio_key, {"prepare": prepare_key, "transcribe": key})
    transcript = Transcript.model_validate_json(store.get_bytes(MergeEngine().process(merge, store, workdir(tmp_path, "merge"))))
    assert transcript.text == " ".join(s.text for s in out.segments)
    assert transcript.duration == prepared.duration


def test_stereo_per_channel(whisper: FasterWhisperEngine, store: FileStore, tmp_path: Path) -> None:
    audio_key = upload(store, "stereo_en.wav")
    prepare_key, prepared = run_prepare(store, tmp_path, audio_key)
    assert prepared.channels == 2
    assert prepared.channel_keys == [f"jobs/job1/tasks/prepare/channel_{i}.wav" for i in range(2)]

    t = task("transcribe_ch1", "transcribe", "faster-whisper", audio_key, {"prepare": prepare_key}, channel=1)
    out = TranscribeOutput.model_validate_json(store.get_bytes(whisper.process(t, store, workdir(tmp_path, "ch1"))))
    assert out.channel == 1
    text = normalise(" ".join(s.text for s in out.segments))
    assert jiwer.wer(normalise((FIXTURES / "short_en.txt").read_text()), text) <= 0.30


def test_undecodable_audio_is_not_retryable(store: FileStore, tmp_path: Path) -> None:
    store.put_bytes("jobs/job1/audio/original.mp3", b"\x00garbage" * 1000)
    with pytest.raises(EngineError) as err:
        PrepareEngine().process(task("prepare", "prepare", "prepare", "jobs/job1/audio/original.mp3"), store, tmp_path)
    assert not err.value.retryable


def test_english_only_model_rejects_other_languages(whisper: FasterWhisperEngine, store: FileStore, tmp_path: Path) -> None:
    t = task("transcribe", "transcribe", "faster-whisper", "x", {"prepare": "missing"}, model="tiny.en", language="de")
    with pytest.raises(EngineError, match="English-only") as err:
        whisper.process(t, store, tmp_path)
    assert not err.value.retryable


def test_unknown_model_is_not_retryable(whisper: FasterWhisperEngine, store: FileStore, tmp_path: Path) -> None:
    t = task("transcribe", "transcribe", "faster-whisper", "x", {"prepare": "missing"}, model="nope")
    with pytest.raises(EngineError, match="unknown model") as err:
        whisper.process(t, store, tmp_path)
    assert not err.value.retryable
