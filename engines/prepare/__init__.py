"""Prepare engine: decode the upload to 16 kHz WAVs."""
