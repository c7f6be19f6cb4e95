"""faster-whisper transcription engine (CTranslate2)."""
