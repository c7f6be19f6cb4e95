"""Dalston engines."""
