"""Batch orchestrator: expands jobs into task DAGs and drives them to completion."""
