"""Audio redaction: span merging and the silence/beep signal, then the engine on a FileStore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engines.audio_redactor.engine import AudioRedactorEngine
from engines.audio_redactor.redact import BEEP_DBFS, FADE_S, apply, merge_spans
from engines.base import EngineError
from shared import keys
from shared.audio import read_wav, write_wav
from shared.contracts import DetectOutput, PrepareOutput, RedactConfig, RedactOutput, TaskMessage
from shared.storage import FileStore
from shared.transcript import Entity

RATE = 44_100


def noise(seconds: float, channels: int = 2, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(7)
    return (rng.uniform(-0.5, 0.5, size=(round(seconds * rate), channels))).astype(np.float32)


def same(spans: list[tuple[float, float]], expected: list[tuple[float, float]]) -> bool:
    return len(spans) == len(expected) and bool(np.allclose(np.array(spans), np.array(expected)))


# --- spans ------------------------------------------------------------------------


def test_spans_are_widened_merged_and_sorted() -> None:
    spans = merge_spans([(5.0, 6.0), (1.0, 2.0), (2.1, 2.5), (8.0, 8.5)], buffer_s=0.1, duration=10.0)
    assert same(spans, [(0.9, 2.6), (4.9, 6.1), (7.9, 8.6)])


def test_buffers_clamp_at_both_ends() -> None:
    assert same(merge_spans([(0.05, 0.5), (9.8, 10.0)], buffer_s=0.3, duration=10.0), [(0.0, 0.8), (9.5, 10.0)])


def test_no_buffer_keeps_spans_and_drops_inverted_ones() -> None:
    assert merge_spans([(1.0, 2.0), (3.0, 2.0)], buffer_s=0.0, duration=10.0) == [(1.0, 2.0)]
    assert same(merge_spans([(4.0, 4.0)], buffer_s=0.1, duration=10.0), [(3.9, 4.1)])
    assert merge_spans([], buffer_s=0.1, duration=10.0) == []
    # An entity past the end (timing drift) is clamped away, not extended.
    assert merge_spans([(12.0, 13.0)], buffer_s=0.1, duration=10.0) == []


# --- signal -----------------------------------------------------------------------


def test_silence_is_exact_inside_and_untouched_outside_on_every_channel() -> None:
    audio = noise(3.0, channels=3)
    out = apply(audio, RATE, [(1.0, 2.0)], "silence")
    fade = round(FADE_S * RATE)
    start, end = RATE, 2 * RATE
    assert out.shape == audio.shape and out.dtype == np.float32
    assert np.all(out[start + fade : end - fade] == 0.0)
    assert np.array_equal(out[:start], audio[:start]) and np.array_equal(out[end:], audio[end:])
    # The edges fade: never louder than the original, and quieter the deeper inside.
    edge = out[start : start + fade]
    assert np.all(np.abs(edge) <= np.abs(audio[start : start + fade]) + 1e-7)
    assert abs(edge[-1, 0]) < abs(audio[start + fade - 1, 0])
    assert np.array_equal(apply(audio, RATE, [], "silence"), audio)
    assert audio is not out  # the input stays as it was


def test_beep_is_1khz_at_the_set_level_on_every_channel() -> None:
    audio = noise(3.0, channels=2)
    out = apply(audio, RATE, [(0.5, 2.5)], "beep")
    inner = out[RATE : 2 * RATE]
    for ch in range(2):
        spectrum = np.abs(np.fft.rfft(inner[:, ch]))
        peak_hz = np.fft.rfftfreq(inner.shape[0], 1 / RATE)[int(np.argmax(spectrum))]
        assert peak_hz == pytest.approx(1000.0, abs=2.0)
        # A pure tone: no trace of the noise left.
        assert np.max(np.abs(inner[:, ch])) == pytest.approx(10 ** (BEEP_DBFS / 20), rel=1e-3)
    np.testing.assert_array_equal(inner[:, 0], inner[:, 1])
    assert np.array_equal(out[: RATE // 2], audio[: RATE // 2])
    assert np.array_equal(out[5 * RATE // 2 :], audio[5 * RATE // 2 :])


def test_spans_at_the_file_edges_do_not_fade_in_the_original() -> None:
    audio = noise(1.0, channels=1)
    out = apply(audio, RATE, [(0.0, 0.2), (0.8, 1.0)], "silence")
    assert np.all(out[: RATE // 5 - round(FADE_S * RATE)] == 0.0)
    assert out[0, 0] == 0.0 and out[-1, 0] == 0.0


def test_mono_1d_input_and_unknown_mode() -> None:
    audio = noise(1.0, channels=1)[:, 0]
    out = apply(audio, RATE, [(0.25, 0.75)], "silence")
    assert out.ndim == 1 and np.all(out[RATE // 2] == 0.0)
    with pytest.raises(ValueError, match="unknown redaction mode"):
        apply(audio, RATE, [], "bleep")  # type: ignore[arg-type]


# --- engine -----------------------------------------------------------------------


def entity(start: float, end: float) -> Entity:
    return Entity(
        type="person_name", category="pii", text="Jane", start_char=0, end_char=4,
        start=start, end=end, confidence=0.9, first_word=0, last_word=0,
    )  # fmt: skip


def redact_task(store: FileStore, config: RedactConfig, entities: list[Entity], audio: np.ndarray, rate: int) -> TaskMessage:
    job = "job-1"
    audio_key = keys.job_audio(job, ".wav")
    src = store.root / "upload.wav"
    write_wav(src, audio, rate)
    store.put_file(audio_key, src)
    prepared = PrepareOutput(
        audio_key="p/audio.wav", channel_keys=["p/c0.wav", "p/c1.wav"], duration=audio.shape[0] / rate,
        channels=audio.shape[1], original_sample_rate=rate,
    )  # fmt: skip
    store.put_bytes("p/output.json", prepared.model_dump_json().encode())
    store.put_bytes("d/output.json", DetectOutput(entities=entities).model_dump_json().encode())
    return TaskMessage(
        task_id="t", job_id=job, name="redact", stage="redact", engine_id="audio-redactor", attempt=1,
        audio_key=audio_key, inputs={"prepare": "p/output.json", "detect": "d/output.json"},
        output_prefix=f"jobs/{job}/tasks/redact/", config=config,
    )  # fmt: skip


def test_engine_redacts_the_original_at_its_rate_and_channels(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    audio = noise(2.0, channels=2, rate=22_050)
    task = redact_task(store, RedactConfig(mode="silence", buffer_s=0.1), [entity(0.5, 0.9), entity(0.95, 1.2)], audio, 22_050)
    work = tmp_path / "work"
    work.mkdir()

    out = RedactOutput.model_validate_json(store.get_bytes(AudioRedactorEngine().process(task, store, work)))

    assert out.audio_key == keys.job_redacted_audio("job-1")
    assert same(out.spans, [(0.4, 1.3)])
    assert (out.sample_rate, out.channels, out.details["engine_id"]) == (22_050, 2, "audio-redactor")
    redacted, rate = read_wav(store.local_path(out.audio_key))
    original, _ = read_wav(store.local_path(task.audio_key))  # kept: the job did not ask to delete it
    assert rate == 22_050 and redacted.shape == original.shape
    fade = round(FADE_S * rate)
    assert np.all(redacted[round(0.4 * rate) + fade : round(1.3 * rate) - fade] == 0.0)
    assert np.array_equal(redacted[: round(0.4 * rate)], original[: round(0.4 * rate)])
    assert np.array_equal(redacted[round(1.3 * rate) :], original[round(1.3 * rate) :])


def test_engine_deletes_the_original_only_when_asked_and_a_retry_reuses_the_redacted_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    task = redact_task(store, RedactConfig(mode="beep", delete_original=True), [entity(0.2, 0.4)], noise(1.0), RATE)
    (tmp_path / "work").mkdir()
    engine = AudioRedactorEngine()

    engine.process(task, store, tmp_path / "work")
    assert not store.exists(task.audio_key) and store.exists(keys.job_redacted_audio("job-1"))

    again = RedactOutput.model_validate_json(store.get_bytes(engine.process(task, store, tmp_path / "work")))
    assert again.details["reused"] is True and again.sample_rate == RATE and again.channels == 2

    # Without the redacted file, a missing original is a failure another attempt cannot fix.
    store.delete_prefix(keys.job_redacted_audio("job-1"))
    with pytest.raises(EngineError) as err:
        engine.process(task, store, tmp_path / "work")
    assert not err.value.retryable
