"""Offline default diarizer: Silero VAD + resemblyzer + clustering."""
