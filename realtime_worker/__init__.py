"""Dalston realtime_worker."""
