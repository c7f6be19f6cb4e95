"""engine_id -> engine class, as "module:attribute" so a process imports only its own engine.

Adding an engine = one sub-package under engines/ + one entry here.
"""

from __future__ import annotations

import importlib

from engines.base import Engine

ENGINES: dict[str, str] = {
    "prepare": "engines.prepare.engine:PrepareEngine",
    "faster-whisper": "engines.faster_whisper.engine:FasterWhisperEngine",
    "merge": "engines.merge.engine:MergeEngine",
    "diarize-default": "engines.diarize_default.engine:DefaultDiarizerEngine",
    "pyannote-4.0": "engines.pyannote.engine:PyannoteEngine",
    "phoneme-align": "engines.align.engine:Wav2Vec2AlignEngine",
    "whisperx-full": "engines.whisperx_full.engine:WhisperXFullEngine",
}


class UnknownEngine(LookupError):
    pass


def create(engine_id: str) -> Engine:
    try:
        target = ENGINES[engine_id]
    except KeyError:
        raise UnknownEngine(f"unknown engine {engine_id!r}; available: {', '.join(sorted(ENGINES))}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)()
