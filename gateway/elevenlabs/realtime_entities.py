"""Entity detection for ElevenLabs realtime `entity_detection`: one detector per gateway
process, loaded on first use (spaCy and presidio take a second or two), run in a thread so
the event loop keeps relaying audio meanwhile."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from shared.pii.detect import Detector
from shared.settings import Settings

_detector: Detector | None = None
_loading = asyncio.Lock()
# presidio's analyzer and the spaCy pipeline are not documented as thread-safe: one call at a time.
_finding = threading.Lock()


async def detector(settings: Settings) -> Detector:
    global _detector
    async with _loading:
        if _detector is None:
            regions = tuple(r.strip().upper() for r in settings.pii_phone_regions.split(",") if r.strip())
            loaded = Detector(phone_regions=regions or ("US",))
            await asyncio.to_thread(loaded.load)
            _detector = loaded
    return _detector


def _find(found: Detector, text: str, types: list[str]) -> list[dict[str, Any]]:
    with _finding:
        hits = found.find(text, types)
    # Our entity type ids are ElevenLabs' `entity_type` names; offsets are into `text`.
    return [{"text": text[h.start : h.end], "entity_type": h.type, "start_char": h.start, "end_char": h.end} for h in hits]


async def find(text: str, types: list[str], settings: Settings) -> list[dict[str, Any]]:
    """ElevenLabs DetectedEntity objects for `text`."""
    found = await detector(settings)
    return await asyncio.to_thread(_find, found, text, types)
