"""The reward model of the direct method and doubly robust estimators.

:class:`ActionMeanRewardModel` predicts, for every context, each action's mean logged reward
(fitted in the first pass). It ignores the context, so DM is biased whenever the best action
depends on the context, but DR stays unbiased (its correction term fixes the model's error in
expectation) and gains from the model whatever variance the per-action means explain. Fitting
on the evaluated rows themselves adds a bias of order 1/(rows per action), negligible at the
sizes replay is for.

An action the log never chose gets a prediction that shares strength through the parts of
its catalog id (``model|temperature|template``): an additive ridge model of the logged
per-action means over one-hot model, temperature and template indicators (each action
weighted by its count), clipped to the reward range. A model the log never chose contributes
nothing of its own, so the prediction falls back to the logged mean adjusted for the
temperature and template. (The estimators treat such actions as unsupported and widen their
intervals over them whatever the model says; the model only places the point estimate.)
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from learners.catalog import ACTION_SEPARATOR
from offline.replay.log import ActionSpace, FloatArray, LogChunk, LogSummary

RIDGE = 5.0  # penalty on each attribute effect, in logged rows


class RewardModel(Protocol):
    @property
    def name(self) -> str: ...

    def predict(self, chunk: LogChunk) -> FloatArray:
        """(rows × actions) predicted rewards; may be a read-only broadcast view."""
        ...


def attribute_means(ids: tuple[str, ...], counts: FloatArray, means: FloatArray,
                    overall: float, ridge: float = RIDGE) -> FloatArray:
    """Predicted mean of every action in ``ids`` from an additive ridge model over the parts
    of its id (``model|temperature|template``), fitted to the actions with ``counts`` > 0.

    Minimises Σ_a counts_a (means_a − overall − x_a·β)² + ridge ‖β‖², x_a the one-hot
    indicators of the action's parts; ids that do not split into three parts get ``overall``.
    """
    parts = [action.split(ACTION_SEPARATOR) for action in ids]
    levels: dict[tuple[int, str], int] = {}
    for split in parts:
        if len(split) == 3:
            for k, value in enumerate(split):
                levels.setdefault((k, value), len(levels))
    design = np.zeros((len(ids), len(levels)))
    for row, split in enumerate(parts):
        if len(split) == 3:
            for k, value in enumerate(split):
                design[row, levels[(k, value)]] = 1.0
    if not levels:
        return np.full(len(ids), overall)
    weighted = design * counts[:, None]
    gram = design.T @ weighted + ridge * np.eye(len(levels))
    beta = np.linalg.solve(gram, weighted.T @ (np.nan_to_num(means) - overall))
    predicted: FloatArray = overall + design @ beta
    return predicted


class ActionMeanRewardModel:
    """q̂(x, a) = mean logged reward of action a; for an action never logged, the prediction of
    :func:`attribute_means` (see the module docstring)."""

    name = "action-mean (never-logged actions: model + temperature + template ridge)"

    def __init__(self, summary: LogSummary, space: ActionSpace,
                 reward_range: tuple[float, float] = (0.0, 1.0)) -> None:
        overall = summary.reward_total / summary.n
        counts = np.zeros(len(space))
        sums = np.zeros(len(space))
        for action, count in summary.counts.items():
            position = space.position(action)
            if position is not None and count:
                counts[position] = count
                sums[position] = summary.reward_sums[action]
        logged = counts > 0
        means = np.divide(sums, counts, out=np.full(len(space), np.nan), where=logged)
        prior = np.clip(attribute_means(space.ids, counts, means, overall), *reward_range)
        self.means: FloatArray = np.where(logged, means, prior)

    def predict(self, chunk: LogChunk) -> FloatArray:
        predicted: FloatArray = np.broadcast_to(self.means, (len(chunk), len(self.means)))
        return predicted
