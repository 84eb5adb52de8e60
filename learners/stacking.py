"""An online ridge regression that stacks several predictions of an action's reward.

The served policy's optional VW + River stack (``[bandit] stack_river``,
:class:`learners.policy.OnlinePolicy`) uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


class Stacker:
    """Online ridge regression of the reward on ``[1, *predictions]`` of the chosen action,
    shrunk towards ``prior`` weights with the strength of ``strength`` pseudo-observations, and
    forgetting old outcomes at rate ``1 - decay`` (the components keep changing)."""

    def __init__(self, *, prior: Sequence[float], strength: float = 200.0,
                 decay: float = 0.999) -> None:
        self.prior = tuple(prior)
        self.strength = strength
        self.decay = decay
        width = len(self.prior)
        self._gram = np.zeros((width, width))
        self._moment = np.zeros(width)
        self._weights = np.asarray(self.prior, dtype=np.float64)

    @property
    def weights(self) -> FloatArray:
        return self._weights

    def predict(self, columns: FloatArray) -> FloatArray:
        """Stacked estimate of each row of ``columns`` (rows: actions; columns: ``[1, ...]``)."""
        return np.asarray(columns @ self._weights, dtype=np.float64)

    def learn_one(self, x: FloatArray, reward: float) -> None:
        self._gram *= self.decay
        self._moment *= self.decay
        self._gram += np.outer(x, x)
        self._moment += x * reward
        ridge = self.strength * np.eye(len(x))
        prior = np.asarray(self.prior, dtype=np.float64)
        self._weights = np.asarray(
            np.linalg.solve(self._gram + ridge, self._moment + self.strength * prior),
            dtype=np.float64)
