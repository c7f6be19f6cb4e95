"""Integrated transcribe + align + diarize engine, one task."""
