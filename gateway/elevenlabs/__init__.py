"""ElevenLabs-compatible batch API (see `routes`)."""

from gateway.elevenlabs.routes import router

__all__ = ["router"]
