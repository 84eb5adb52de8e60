"""Seeded draws from a probability vector, so a logged decision can be reproduced."""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from collections.abc import Sequence


def seed_from_id(decision_id: str) -> int:
    """A 64-bit seed derived from a decision id (stable across processes and versions)."""
    return int.from_bytes(hashlib.sha256(decision_id.encode()).digest()[:8], "big")


def normalize(probabilities: Sequence[float]) -> list[float]:
    """``probabilities`` as float64 summing to 1; raises on an empty or all-zero vector."""
    # ``p > 0.0`` is False for NaN and for non-positive entries: both become 0.
    values = [float(p) if p > 0.0 else 0.0 for p in probabilities]
    total = sum(values)
    if not values or total <= 0.0:
        raise ValueError("a probability vector needs at least one positive entry")
    return [v / total for v in values]


def draw_index(probabilities: Sequence[float], seed: int) -> int:
    """Index drawn from ``probabilities`` (already normalised) with ``random.Random(seed)``."""
    u = random.Random(seed).random()
    # The first index whose running sum exceeds u: running sums are left unchanged by zero
    # entries, so the index found always has a positive probability.
    cumulative = list(itertools.accumulate(probabilities))
    index = bisect.bisect_right(cumulative, u)
    if index < len(cumulative):
        return index
    # u at or above the rounded total: the last action with a positive probability.
    return max((i for i, p in enumerate(probabilities) if p > 0.0), default=0)
