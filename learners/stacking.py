"""An online ridge regression that stacks several predictions of an action's reward.

The served policy's optional VW + River stack (``[bandit] stack_river``,
:class:`learners.policy.OnlinePolicy`) uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np
from numpy.typing import NDArray

from learners.protocol import SnapshotError

FloatArray = NDArray[np.float64]


class StackedOutcome(msgspec.Struct, frozen=True):
    """One learned outcome: ``[1, *predictions]`` of the chosen action and its reward."""

    columns: FloatArray
    reward: float


class _StackerState(msgspec.Struct, frozen=True, array_like=True):
    gram: list[list[float]]
    moment: list[float]
    weights: list[float]


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

    def predict_one(self, columns: FloatArray) -> FloatArray:
        """Stacked estimate of each row of ``columns`` (rows: actions; columns: ``[1, ...]``)."""
        return np.asarray(columns @ self._weights, dtype=np.float64)

    def learn_one(self, event: StackedOutcome) -> None:
        x = event.columns
        self._gram *= self.decay
        self._moment *= self.decay
        self._gram += np.outer(x, x)
        self._moment += x * event.reward
        ridge = self.strength * np.eye(len(x))
        prior = np.asarray(self.prior, dtype=np.float64)
        self._weights = np.asarray(
            np.linalg.solve(self._gram + ridge, self._moment + self.strength * prior),
            dtype=np.float64)

    def snapshot(self) -> bytes:
        return msgspec.msgpack.encode(_StackerState(
            gram=self._gram.tolist(), moment=self._moment.tolist(),
            weights=self._weights.tolist()))

    def restore(self, data: bytes) -> None:
        try:
            state = msgspec.msgpack.decode(data, type=_StackerState)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise SnapshotError(f"not a stacker snapshot: {exc}") from exc
        width = len(self.prior)
        shapes = [len(state.moment), len(state.weights), len(state.gram),
                  *(len(row) for row in state.gram)]
        if any(size != width for size in shapes):
            raise SnapshotError(f"not a stacker of {width} columns")
        gram = np.asarray(state.gram, dtype=np.float64)
        self._gram = gram
        self._moment = np.asarray(state.moment, dtype=np.float64)
        self._weights = np.asarray(state.weights, dtype=np.float64)
