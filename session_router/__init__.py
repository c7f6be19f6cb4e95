"""Dalston session_router."""
