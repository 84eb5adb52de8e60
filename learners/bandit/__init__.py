"""Contextual bandits over catalog actions."""
