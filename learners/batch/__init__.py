"""Batch models trained on the logged history: success, complexity, time, quality, templates."""
