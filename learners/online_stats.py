"""Running per-model and per-action outcome statistics (River), for cold-start predictions.

Before batch models exist, the route response's predictions come from these statistics shrunk
towards catalog priors: success from Beta posteriors of counts (action level shrunk to model level,
model level to a uniform Beta(1, 1)), quality from running means, time as the catalog-prior latency
estimate corrected by the observed log-ratio of real to estimated time, with an 80% interval.
"""

from __future__ import annotations

import math
import pickle

import msgspec
from river import stats

from learners.protocol import SnapshotError

ACTION_SHRINKAGE = 5.0  # pseudo-observations of the model-level rate behind each action's rate
QUALITY_PRIOR_WEIGHT = 2.0
TIME_PRIOR_SD = 0.5  # log-space spread of real/estimated time before any observation
Z80 = 1.2815515655446004  # 10% and 90% quantiles of the normal distribution


class ActionPrediction(msgspec.Struct, frozen=True):
    success_probability: float
    quality: float
    time_s: float
    time_interval_s: tuple[float, float]
    observations: int
    source: str


class OutcomeObservation(msgspec.Struct, frozen=True):
    """One outcome of an action: ``success`` is 1 for approved, 0 for rejected, 0.5 between;
    ``prior_time_s`` is the catalog's time estimate the observed time is compared with."""

    model: str
    action_id: str
    success: float
    quality: float | None
    time_s: float | None
    prior_time_s: float


class ActionQuery(msgspec.Struct, frozen=True):
    """One action to predict, with its catalog time estimate."""

    model: str
    action_id: str
    prior_time_s: float


class _ModelStats:
    def __init__(self) -> None:
        self.successes = 0.0
        self.count = 0
        self.quality = stats.Mean()
        self.log_time_ratio = stats.Var()


class _ActionStats:
    def __init__(self) -> None:
        self.successes = 0.0
        self.count = 0


class OutcomeStats:
    """Incremental statistics of outcomes per model and per action id."""

    def __init__(self) -> None:
        self._models: dict[str, _ModelStats] = {}
        self._actions: dict[str, _ActionStats] = {}
        self._quality = stats.Mean()

    def learn_one(self, event: OutcomeObservation) -> None:
        """Fold in one outcome."""
        model_stats = self._models.setdefault(event.model, _ModelStats())
        model_stats.successes += event.success
        model_stats.count += 1
        quality, time_s, prior_time_s = event.quality, event.time_s, event.prior_time_s
        if quality is not None:
            model_stats.quality.update(quality)
            self._quality.update(quality)
        if time_s is not None and time_s > 0 and prior_time_s > 0:
            model_stats.log_time_ratio.update(math.log(time_s / prior_time_s))
        action_stats = self._actions.setdefault(event.action_id, _ActionStats())
        action_stats.successes += event.success
        action_stats.count += 1

    def snapshot(self) -> bytes:
        """The statistics pickled (River's running statistics have no other format)."""
        return pickle.dumps((self._models, self._actions, self._quality),
                            protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, data: bytes) -> None:
        """Load a :meth:`snapshot`; ``data`` must be authenticated (learners.protocol)."""
        try:
            models, actions, quality = pickle.loads(data)
        except Exception as exc:
            raise SnapshotError(f"not an outcome statistics snapshot: {exc}") from exc
        if not (isinstance(models, dict) and isinstance(actions, dict)
                and isinstance(quality, stats.Mean)):
            raise SnapshotError("not an outcome statistics snapshot")
        self._models, self._actions, self._quality = models, actions, quality

    def predict_one(self, query: ActionQuery) -> ActionPrediction:
        """Success, quality and time of one action, shrunk towards the priors."""
        model_stats = self._models.get(query.model)
        action_stats = self._actions.get(query.action_id)
        prior_time_s = query.prior_time_s
        model_rate = 0.5
        quality = self._quality.get() if self._quality.n else 5.0
        mu, sd, n_time = 0.0, TIME_PRIOR_SD, 0.0
        if model_stats is not None:
            # Beta(1, 1) prior: the posterior mean of the model's success rate.
            model_rate = (model_stats.successes + 1.0) / (model_stats.count + 2.0)
            q = model_stats.quality
            if q.n:
                quality = (q.get() * q.n + quality * QUALITY_PRIOR_WEIGHT) / (
                    q.n + QUALITY_PRIOR_WEIGHT
                )
            var = model_stats.log_time_ratio
            n_time = var.mean.n
            if n_time:
                mu = var.mean.get() * n_time / (n_time + 1.0)
                observed_var = var.get() if n_time > 1 else TIME_PRIOR_SD**2
                sd = math.sqrt((observed_var * n_time + TIME_PRIOR_SD**2) / (n_time + 1.0))
        count = action_stats.count if action_stats else 0
        successes = action_stats.successes if action_stats else 0.0
        rate = (successes + ACTION_SHRINKAGE * model_rate) / (count + ACTION_SHRINKAGE)
        centre = prior_time_s * math.exp(mu)
        interval = (prior_time_s * math.exp(mu - Z80 * sd), prior_time_s * math.exp(mu + Z80 * sd))
        observed = model_stats.count if model_stats else 0
        return ActionPrediction(
            success_probability=rate,
            quality=quality,
            time_s=centre,
            time_interval_s=interval,
            observations=observed,
            source="online" if observed else "prior",
        )
