"""Dalston gateway."""
