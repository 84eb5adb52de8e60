"""The base of replay's domain errors (plain exceptions: no HTTP knowledge)."""

from __future__ import annotations


class ReplayError(ValueError):
    """Off-policy evaluation cannot proceed: bad log rows, an unknown policy, bad options."""
