"""Merge engine: assemble the canonical transcript."""
