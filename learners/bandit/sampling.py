"""Seeded draws from a probability vector, so a logged decision can be reproduced."""

from __future__ import annotations

import _random
import bisect
import hashlib
import itertools
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray


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
    # random.Random seeds an int through its C base class: the same generator and draw,
    # without the Python-level __init__ and seed() in between.
    u = _random.Random(seed).random()
    # The first index whose running sum exceeds u: running sums are left unchanged by zero
    # entries, so the index found always has a positive probability.
    cumulative = list(itertools.accumulate(probabilities))
    index = bisect.bisect_right(cumulative, u)
    if index < len(cumulative):
        return index
    # u at or above the rounded total: the last action with a positive probability.
    return max((i for i, p in enumerate(probabilities) if p > 0.0), default=0)


def squarecb(costs: NDArray[np.float64], gamma: float) -> list[float]:
    """SquareCB (Foster & Rakhlin 2020) over predicted costs, as VW's ``--squarecb``: each
    action but the cheapest gets ``1 / (K + γ · (cost − lowest cost))``, the cheapest (the first
    of equal ones) the rest, which is at least ``1 / K``."""
    if costs.size == 0:
        raise ValueError("no action to choose from")
    best = int(costs.argmin())
    probabilities = 1.0 / (costs.size + gamma * (costs - costs[best]))
    probabilities[best] = 0.0
    probabilities[best] = 1.0 - float(probabilities.sum())
    result: list[float] = probabilities.tolist()
    return result
