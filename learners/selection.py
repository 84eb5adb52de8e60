"""Online selection between the contextual bandit and a non-contextual one.

A contextual learner needs data before its context features pay off, and on some worlds they
never do (the context carries no signal, or too little for the data there is); a non-contextual
learner then reaches the best fixed action sooner. Neither is best everywhere, so the policy
serves the one whose value on recent outcomes is higher, estimated off-policy:

- before each outcome is learned, both candidates give their probabilities over the decision's
  allowed actions, and each gets the doubly-robust estimate of its value on that outcome
  (``Σ π(b)·q̂(b) + π(a)/μ(a)·(r − q̂(a))``, with ``q̂`` the contextual regression's predicted
  rewards and ``μ(a)`` the logged propensity);
- :class:`CandidateSelector` keeps exponentially weighted sums of these values (half-life in
  outcomes) and switches only when the other candidate's mean is higher by more than ``z``
  standard errors of the paired difference (so noise does not make it flip);
- :class:`ActionMeans` is the non-contextual candidate's estimate: each action's mean reward
  shrunk towards its model's mean, and that towards the overall mean.

Both candidates learn from every outcome whichever serves, so the one not serving keeps up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from learners.catalog import Action

FloatArray = NDArray[np.float64]
CONTEXTUAL, NONCONTEXTUAL = 0, 1
CANDIDATES = ("contextual", "non-contextual")
MIN_WEIGHT_PROPENSITY = 1e-3  # bounds one outcome's importance weight (and its share of the sums)


class ActionMeans:
    """Non-contextual reward estimates: an action's mean shrunk towards its model's mean with
    the weight of ``strength`` outcomes, the model's towards the overall mean likewise (the
    overall mean starts at ``prior``)."""

    def __init__(self, *, strength: float = 2.0, prior: float = 0.5) -> None:
        self.strength = strength
        self.prior = prior
        self._actions: dict[str, tuple[int, float]] = {}
        self._models: dict[str, tuple[int, float]] = {}
        self._count = 0
        self._total = 0.0

    def predict(self, actions: Sequence[Action]) -> FloatArray:
        """Estimated mean reward of each action."""
        k = self.strength
        overall = (self._total + k * self.prior) / (self._count + k)
        models: dict[str, float] = {}
        out = np.empty(len(actions))
        for i, action in enumerate(actions):
            name = action.model.name
            model = models.get(name)
            if model is None:
                n, s = self._models.get(name, (0, 0.0))
                model = models[name] = (s + k * overall) / (n + k)
            n, s = self._actions.get(action.id, (0, 0.0))
            out[i] = (s + k * model) / (n + k)
        return out

    def learn_one(self, action: Action, reward: float) -> None:
        n, s = self._actions.get(action.id, (0, 0.0))
        self._actions[action.id] = (n + 1, s + reward)
        n, s = self._models.get(action.model.name, (0, 0.0))
        self._models[action.model.name] = (n + 1, s + reward)
        self._count += 1
        self._total += reward


def doubly_robust_values(candidates: Sequence[Sequence[float]], predicted: FloatArray,
                         chosen: int, propensity: float, reward: float) -> FloatArray:
    """Doubly-robust estimate of each candidate's expected reward on one logged outcome:
    ``candidates[k]`` its probabilities over the allowed actions, ``predicted`` the reward
    model's estimate of each, ``chosen`` the logged position, ``propensity`` its logged
    probability."""
    probabilities = np.asarray(candidates, dtype=np.float64)
    weight = probabilities[:, chosen] / max(propensity, MIN_WEIGHT_PROPENSITY)
    values: FloatArray = probabilities @ predicted + weight * (reward - predicted[chosen])
    return values


class CandidateSelector:
    """Which candidate serves, from exponentially weighted doubly-robust values (half-life
    ``halflife`` outcomes): the served one changes when another's mean exceeds it by more than
    ``z`` standard errors of their paired difference (never before ``min_outcomes``)."""

    def __init__(self, *, candidates: int, halflife: float, z: float,
                 min_outcomes: int = 50) -> None:
        self.halflife = halflife
        self.z = z
        self.min_outcomes = min_outcomes
        self._seen = 0
        self.served = CONTEXTUAL
        self._decay = 0.5 ** (1.0 / halflife)
        self._weight = 0.0  # Σ w
        self._weight_sq = 0.0  # Σ w²
        self._sums = np.zeros(candidates)  # Σ w·v_k
        self._cross = np.zeros((candidates, candidates))  # Σ w·v_j·v_k

    def learn_one(self, values: FloatArray) -> None:
        """Fold in one outcome's value of every candidate; may change :attr:`served`."""
        d = self._decay
        self._seen += 1
        self._weight = d * self._weight + 1.0
        self._weight_sq = d * d * self._weight_sq + 1.0
        self._sums = d * self._sums + values
        self._cross = d * self._cross + np.outer(values, values)
        if self._seen < self.min_outcomes:
            return
        best = int(np.argmax(self._sums))
        if best != self.served and self._advantage(best) > 0.0:
            self.served = best

    def means(self) -> FloatArray:
        """Each candidate's weighted mean value (NaN before any outcome)."""
        if self._weight == 0.0:
            return np.full(len(self._sums), math.nan)
        return self._sums / self._weight

    def _advantage(self, other: int) -> float:
        """How far ``other``'s mean is above the served one's, beyond ``z`` standard errors
        of the paired difference (positive: switch)."""
        s, w = self.served, self._weight
        mean = (self._sums[other] - self._sums[s]) / w
        second = (self._cross[other, other] - 2.0 * self._cross[other, s]
                  + self._cross[s, s]) / w
        variance = max(second - mean * mean, 0.0)
        effective = w * w / self._weight_sq
        return float(mean - self.z * math.sqrt(variance / effective))
