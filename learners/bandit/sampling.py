"""Seeded draws from a probability vector, so a logged decision can be reproduced."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence


def seed_from_id(decision_id: str) -> int:
    """A 64-bit seed derived from a decision id (stable across processes and versions)."""
    return int.from_bytes(hashlib.sha256(decision_id.encode()).digest()[:8], "big")


def normalize(probabilities: Sequence[float]) -> list[float]:
    """``probabilities`` as float64 summing to 1; raises on an empty or all-zero vector."""
    values = [max(float(p), 0.0) if p == p else 0.0 for p in probabilities]
    total = sum(values)
    if not values or total <= 0.0:
        raise ValueError("a probability vector needs at least one positive entry")
    return [v / total for v in values]


def draw_index(probabilities: Sequence[float], seed: int) -> int:
    """Index drawn from ``probabilities`` (already normalised) with ``random.Random(seed)``."""
    u = random.Random(seed).random()
    cumulative = 0.0
    last_positive = 0
    for index, p in enumerate(probabilities):
        if p > 0.0:
            last_positive = index
            cumulative += p
            if u < cumulative:
                return index
    return last_positive
