"""Filler words: what `no_verbatim` removes, in batch (the refine stage checks the LLM's
cleanup against it) and in realtime (the ElevenLabs edge drops them itself)."""

from __future__ import annotations

FILLERS = frozenset({"um", "uh", "erm", "er", "ah", "hmm", "mm", "uhm", "umm", "uhh", "eh", "hm"})
