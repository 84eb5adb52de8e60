"""A non-contextual prior blended into the bandit's predicted rewards (``[bandit] prior``).

The contextual regression learns an action's main effect at the pace of its context x action
interactions; per-action running statistics learn it at once. Two blends:

- ``residual``: each action's predicted reward plus the mean of its residuals (reward minus
  the regression's prediction of the chosen action, taken before it learns), shrunk by
  ``n / (n + prior_count)``: an unregularised per-action intercept beside the regression. It
  fades by itself where the context explains the reward (the residuals average out);
- ``mixture``: an exponentially weighted average of the regression and the per-action mean
  reward (shrunk to the overall mean by ``prior_count`` pseudo-outcomes), weights
  ``exp(-prior_eta * loss)`` from each predictor's progressive squared error on the chosen
  action (Vovk's aggregating rule: for squared loss in [0, 1], ``prior_eta = 0.5`` keeps the
  mixture's loss within ``ln 2 / 0.5`` of the better one's);
- ``mixture_vw``: the same, with each action's mean shrunk towards the regression's own
  prediction of it instead of the overall mean, so a never-tried action keeps the
  regression's score (an approval then raises no untried action through the overall mean).

Every statistic is discounted by ``1 - 1 / prior_horizon`` per outcome (0: never), so a change
of the world is forgotten after about ``prior_horizon`` outcomes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import msgspec
import numpy as np
from numpy.typing import NDArray

PriorMode = Literal["off", "residual", "mixture", "mixture_vw"]
FloatArray = NDArray[np.float64]


class PriorState(msgspec.Struct, frozen=True):
    """What :class:`ActionPrior` learned (checkpointed as msgpack)."""

    actions: list[str]
    counts: list[float]
    rewards: list[float]
    residuals: list[float]
    losses: tuple[float, float]  # discounted squared errors: regression, per-action mean


class ActionPrior:
    """Per-action statistics keyed by action id, blended into predicted rewards."""

    def __init__(self, *, mode: PriorMode, count: float, horizon: float, eta: float,
                 min_reward: float = 0.0, max_reward: float = 1.0) -> None:
        self.mode = mode
        self.count = count
        self.horizon = horizon
        self.eta = eta
        self.min_reward = min_reward
        self.max_reward = max_reward
        self._rows: dict[str, int] = {}
        self._counts: FloatArray = np.zeros(0)
        self._rewards: FloatArray = np.zeros(0)
        self._residuals: FloatArray = np.zeros(0)
        self._losses = np.zeros(2)
        self._catalog_rows: dict[str, NDArray[np.intp]] = {}

    def catalog_rows(self, fingerprint: str, action_ids: Sequence[str]) -> NDArray[np.intp]:
        """:meth:`rows` of a catalog's actions (``action_ids``, in catalog order), kept per
        catalog ``fingerprint``: a request gathers its allowed actions' rows from them."""
        rows = self._catalog_rows.get(fingerprint)
        if rows is None:
            rows = self._catalog_rows[fingerprint] = self.rows(action_ids)
        return rows

    def rows(self, action_ids: Sequence[str]) -> NDArray[np.intp]:
        """Rows of ``action_ids`` in the statistics (new actions get empty rows)."""
        for action_id in action_ids:
            if action_id not in self._rows:
                self._rows[action_id] = len(self._rows)
        grow = len(self._rows) - self._counts.size
        if grow > 0:
            self._counts = np.concatenate([self._counts, np.zeros(grow)])
            self._rewards = np.concatenate([self._rewards, np.zeros(grow)])
            self._residuals = np.concatenate([self._residuals, np.zeros(grow)])
        return np.fromiter((self._rows[a] for a in action_ids), dtype=np.intp,
                           count=len(action_ids))

    def _means(self, rows: NDArray[np.intp], centre: FloatArray | None = None) -> FloatArray:
        if self.mode == "mixture_vw" and centre is not None:
            overall: float | FloatArray = centre
        else:
            total = float(self._counts.sum())
            overall = float(self._rewards.sum()) / total if total > 0.0 else 0.5 * (
                self.min_reward + self.max_reward)
        counts = self._counts[rows]
        means: FloatArray = ((self._rewards[rows] + self.count * overall)
                             / np.maximum(counts + self.count, 1e-12))
        return means

    def _weight(self) -> float:
        """The regression's weight in the mixture."""
        regression, mean = self._losses
        return 1.0 / (1.0 + math.exp(max(-50.0, min(50.0, self.eta * (regression - mean)))))

    def blend(self, rows: NDArray[np.intp], predicted: FloatArray) -> FloatArray:
        """The blended reward of the actions at ``rows``, whose regression predictions are
        ``predicted``."""
        if self.mode == "residual":
            counts = self._counts[rows]
            shift = self._residuals[rows] / np.maximum(counts + self.count, 1e-12)
            shifted: FloatArray = predicted + shift
            return shifted
        if self.mode in ("mixture", "mixture_vw"):
            clipped = np.clip(predicted, self.min_reward, self.max_reward)
            weight = self._weight()
            mixed: FloatArray = weight * clipped + (1.0 - weight) * self._means(rows, clipped)
            return mixed
        return predicted

    def learn_one(self, row: int, reward: float, predicted: float) -> None:
        """Fold in the reward of the action at ``row``, which the regression predicted as
        ``predicted`` before learning it."""
        if self.horizon > 0.0:
            keep = 1.0 - 1.0 / self.horizon
            for values in (self._counts, self._rewards, self._residuals, self._losses):
                values *= keep
        index = np.array([row], dtype=np.intp)
        clipped = min(max(predicted, self.min_reward), self.max_reward)
        mean = float(self._means(index, np.array([clipped]))[0])
        self._losses += ((reward - clipped) ** 2, (reward - mean) ** 2)
        self._counts[row] += 1.0
        self._rewards[row] += reward
        self._residuals[row] += reward - predicted

    def state(self) -> PriorState:
        return PriorState(actions=list(self._rows), counts=self._counts.tolist(),
                          rewards=self._rewards.tolist(), residuals=self._residuals.tolist(),
                          losses=(float(self._losses[0]), float(self._losses[1])))

    def load(self, state: PriorState) -> None:
        """Replace the statistics by ``state``'s."""
        self._rows = {a: i for i, a in enumerate(state.actions)}
        self._catalog_rows = {}
        self._counts = np.asarray(state.counts, dtype=np.float64)
        self._rewards = np.asarray(state.rewards, dtype=np.float64)
        self._residuals = np.asarray(state.residuals, dtype=np.float64)
        self._losses = np.asarray(state.losses, dtype=np.float64)
