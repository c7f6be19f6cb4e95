"""Multilingual `base` on held-out speech: sentences the tests were never tuned on, spoken by
espeak-ng at its default rate in German, French, Italian and Portuguese, beside the committed
Spanish fixture (tests/fixtures/speech_es.wav, spoken at a slowed rate of 130) and the same
Spanish text at the default rate. Prints, per recording: the detected language and its
probability, the transcription WER, and the share of the English reference's content words
that the `translate` task recovers, and how English each output reads (the share of common
English words that no other of these languages has: tests/support.english_share, the measure
tests/e2e/test_openai_sdk.py uses).

    .venv/bin/python bench/multilingual_heldout.py      # needs espeak-ng and the 'multilingual' extra

Measured (2026-11-30, whisper base int8, beam 5, 2 CPU threads; two runs where they differ:
faster-whisper's temperature fallback samples, so a poor decode varies run to run):

    recording        language   WER          translation recall
    de (held out)    de 0.52    0.18         0.14
    fr (held out)    fr 0.54    0.47         0.00
    it (held out)    it 0.91    0.40         0.41
    pt (held out)    hu 0.73    1.04, 1.21   0.06   (misdetected as Hungarian)
    es fixture, 130  es 0.71    0.45         0.29
    es text, 150     es 0.84    0.45         0.24, 0.10

English-word share (a later run): 0.00 in every transcription; in the translations de 0.43,
fr 0.24 (an unrelated English hallucination), it 0.26, pt 0.50, es text 0.46, es fixture 0.08
(and 0.42 in the e2e test's run: half of it left in Spanish or not).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import jiwer
import numpy as np
import soxr

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support import english_share  # noqa: E402

from shared import model_registry  # noqa: E402
from shared.audio import read_wav  # noqa: E402
from shared.settings import Settings  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
# (espeak-ng voice, text, English reference) — written for this bench, not taken from any fixture.
HELD_OUT = {
    "de": (
        "Der Bahnhof liegt am Ende der langen Straße. Jeden Morgen kaufe ich dort eine Zeitung und einen Kaffee. "
        "Im Sommer fahren wir mit dem Fahrrad an den See.",
        "The train station is at the end of the long street. Every morning I buy a newspaper and a coffee there. "
        "In summer we ride our bikes to the lake.",
    ),
    "fr": (
        "La bibliothèque ouvre tôt le matin et ferme tard le vendredi. Les enfants lisent des livres près de la fenêtre. "
        "Nous avons besoin de plus de chaises pour la réunion.",
        "The library opens early in the morning and closes late on Friday. The children read books near the window. "
        "We need more chairs for the meeting.",
    ),
    "it": (
        "Il mercato del sabato vende frutta fresca e formaggio. Mia sorella lavora in un ospedale vicino al fiume. "
        "Domani pioverà tutto il giorno in città.",
        "The Saturday market sells fresh fruit and cheese. My sister works in a hospital near the river. "
        "Tomorrow it will rain all day in the city.",
    ),
    "pt": (
        "O avião chegou atrasado por causa da chuva forte. Os passageiros esperaram duas horas no aeroporto. "
        "Amanhã vamos visitar o museu de arte moderna.",
        "The plane arrived late because of the heavy rain. The passengers waited two hours at the airport. "
        "Tomorrow we will visit the museum of modern art.",
    ),
}
STOP = set("the a an of to in on at and is are was were we i it for by with our my there that this".split())


def stems(text: str) -> set[str]:
    return {w.rstrip("s") for w in re.sub(r"[^a-z' ]+", " ", text.lower()).split() if w not in STOP}


def norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w' ]+", " ", text.lower()).split())


def main() -> None:
    settings = Settings(whisper_cpu_threads=2)
    model = model_registry.load_whisper(model_registry.resolve("base", settings), settings)
    spanish, spanish_en = ((FIXTURES / name).read_text().strip() for name in ("speech_es.txt", "speech_es_en.txt"))
    with tempfile.TemporaryDirectory() as tmp:
        cases: dict[str, tuple[Path, str, str]] = {}
        for voice, (text, english) in HELD_OUT.items():
            path = Path(tmp) / f"{voice}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True)
            cases[f"{voice} (held out)"] = (path, text, english)
        cases["es fixture, 130"] = (FIXTURES / "speech_es.wav", spanish, spanish_en)
        es150 = Path(tmp) / "es150.wav"
        subprocess.run(["espeak-ng", "-v", "es", "-s", "150", "-w", str(es150), spanish], check=True)
        cases["es text, 150"] = (es150, spanish, spanish_en)
        for name, (path, text, english) in cases.items():
            audio, rate = read_wav(path)
            audio = soxr.resample(audio, rate, 16_000).astype(np.float32)
            options = {"beam_size": 5, "vad_filter": False, "condition_on_previous_text": False}
            segments, info = model.transcribe(audio, **options)
            said = " ".join(s.text.strip() for s in segments)
            segments, _ = model.transcribe(audio, task="translate", **options)
            translated = " ".join(s.text.strip() for s in segments)
            recall = len(stems(english) & stems(translated)) / len(stems(english))
            score = jiwer.wer(norm(text), norm(said))
            print(
                f"{name:<16} {info.language} {info.language_probability:.2f}  WER {score:.2f}  recall {recall:.2f}"
                f"  English words: transcribed {english_share(said):.2f}, translated {english_share(translated):.2f},"
                f" reference {english_share(english):.2f}"
            )
            print(f"    said: {said}\n    English: {translated}", flush=True)


if __name__ == "__main__":
    main()
