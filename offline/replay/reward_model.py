"""The reward model of the direct method and doubly robust estimators.

:class:`ActionMeanRewardModel` predicts, for every context, each action's mean logged reward
(fitted in the first pass; actions the log never chose get the mean reward of the whole log).
It ignores the context, so DM is biased whenever the best action depends on the context, but
DR stays unbiased (its correction term fixes the model's error in expectation) and gains from
the model whatever variance the per-action means explain. Fitting on the evaluated rows
themselves adds a bias of order 1/(rows per action), negligible at the sizes replay is for.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from offline.replay.log import ActionSpace, FloatArray, LogChunk, LogSummary


class RewardModel(Protocol):
    @property
    def name(self) -> str: ...

    def predict(self, chunk: LogChunk) -> FloatArray:
        """(rows × actions) predicted rewards; may be a read-only broadcast view."""
        ...


class ActionMeanRewardModel:
    """q̂(x, a) = mean logged reward of action a (see the module docstring)."""

    name = "action-mean"

    def __init__(self, summary: LogSummary, space: ActionSpace) -> None:
        overall = summary.reward_total / summary.n
        means = np.full(len(space), overall, dtype=np.float64)
        for action, count in summary.counts.items():
            position = space.position(action)
            if position is not None and count:
                means[position] = summary.reward_sums[action] / count
        self.means = means

    def predict(self, chunk: LogChunk) -> FloatArray:
        predicted: FloatArray = np.broadcast_to(self.means, (len(chunk), len(self.means)))
        return predicted
