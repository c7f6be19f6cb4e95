"""pyannote.audio 4 diarization engine (needs weights: DALSTON_PYANNOTE_MODEL)."""
