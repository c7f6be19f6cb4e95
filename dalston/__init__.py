"""Dalston dalston."""
