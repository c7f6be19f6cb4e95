"""Cross-session batching of realtime decodes: one CTranslate2 call for B sessions' audio
against B calls one after another, on the same audio in the same run.

    .venv/bin/python -m bench.realtime_batching [--model tiny.en] [--batches 1,2,4] [--repeat 5]

Each "session" is a 4 s utterance decoded the way partials are (greedy, no timestamps):
Whisper's encoder always sees a 30 s window, so a batch of B does B encoder passes either
way; what batching can save is per-call overhead and, on a GPU, idle compute. Prints the
median time of each and the ratio batched / sequential (< 1: batching helps).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import ctranslate2
import numpy as np

from shared import model_registry
from shared.audio import read_wav
from shared.settings import Settings

FIXTURES = Path(__file__).parent.parent / "tests" / "fixtures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--batches", default="1,2,4")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    settings = Settings()
    whisper = model_registry.load_whisper(model_registry.resolve(args.model, settings), settings)
    audio, _ = read_wav(FIXTURES / "speech_en.wav")
    features = whisper.feature_extractor(audio[: 16000 * 4].astype(np.float32))
    window = np.zeros((features.shape[0], 3000), dtype=np.float32)
    window[:, : min(3000, features.shape[1])] = features[:, :3000]
    tokenizer = whisper.hf_tokenizer
    prompt = [tokenizer.token_to_id("<|startoftranscript|>")]
    if whisper.model.is_multilingual:
        prompt += [tokenizer.token_to_id("<|en|>"), tokenizer.token_to_id("<|transcribe|>")]
    prompt.append(tokenizer.token_to_id("<|notimestamps|>"))

    def decode(batch: int) -> list[str]:
        encoded = whisper.model.encode(ctranslate2.StorageView.from_array(np.stack([window] * batch)), to_cpu=False)
        results = whisper.model.generate(encoded, [prompt] * batch, beam_size=1, max_length=100)
        return [tokenizer.decode(r.sequences_ids[0]) for r in results]

    decode(1)  # warm-up
    print(f"model {args.model} on {settings.whisper_device}, {settings.whisper_cpu_threads or 'all'} threads; 4 s utterance")
    print(f"{'B':>3} {'batched ms':>11} {'sequential ms':>14} {'ratio':>6}")
    for batch in (int(b) for b in args.batches.split(",")):
        batched, sequential = [], []
        for _ in range(args.repeat):
            began = time.perf_counter()
            decode(batch)
            batched.append(time.perf_counter() - began)
            began = time.perf_counter()
            for _ in range(batch):
                decode(1)
            sequential.append(time.perf_counter() - began)
        b, s = statistics.median(batched) * 1000, statistics.median(sequential) * 1000
        print(f"{batch:>3} {b:>11.0f} {s:>14.0f} {b / s:>6.2f}")


if __name__ == "__main__":
    main()
