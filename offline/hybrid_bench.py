"""Hybrid contenders of ``router bench-learning`` (issue 4): VW, River and batch models retrained
periodically on the policy's own log, combined into one choice.

- :class:`OwnLogBatch`: the five batch models, retrained (as ``router train`` would) on every
  decision the policy has logged so far, each time that log has doubled since the last training
  (1,000, 2,000, 4,000, ... outcomes);
- :class:`StackedContender`: the service's VW bandit predicts each action's reward (its
  ``cb_adf`` costs); optionally River's and the own-log batch models' predictions join it
  through an online stacker (:class:`Stacker`, ridge regression of the observed reward on the
  chosen action's predictions, shrunk towards VW alone); SquareCB over the stacked estimate
  with the service's γ schedule;
- :class:`BatchFeatureContender`: the service's ``cb_explore_adf`` with the own-log batch models'
  predicted reward as an action feature (per-request action lines).
"""

from __future__ import annotations

import msgspec
import numpy as np

from learners.bandit.sampling import draw_index, seed_from_id
from learners.bandit.vw_bandit import ActionLines, BanditSettings, VWBandit
from learners.bandit.vw_format import format_shared
from learners.batch.models import BatchModels
from learners.batch.settings import TrainSettings
from learners.batch.training import TrainingError, train_models
from learners.catalog import Catalog
from learners.history import HistoryStats
from learners.online_models import OnlineOutcomeModels
from learners.reward import RewardProfile, Verdict
from learners.stacking import Stacker
from offline.dataset import history_from_rows
from offline.history_file import HistoryRow
from offline.learning_bench import (
    ActionFeatureContender,
    FloatArray,
    Step,
    _progress,
    history_at,
    observe,
)
from offline.synthetic import history_row
from offline.world import SimOutcome

FIRST_TRAINING = 1000  # outcomes in the log before the first batch training
# The hybrids draw with the service contender's seeded uniforms (common random numbers): where
# their probabilities agree with the service's they choose the same action, so a paired
# difference measures the policies, not their draws.
DRAWS = "service"


class OwnLogBatch:
    """Batch models trained on the policy's own logged decisions, retrained whenever the log has
    doubled since the last training (the first time at ``first`` outcomes)."""

    def __init__(self, catalog: Catalog, profile: RewardProfile, *, first: int = FIRST_TRAINING,
                 search_budget_s: float = 10.0) -> None:
        self.catalog = catalog
        self.profile = profile
        self.first = first
        self.search_budget_s = search_budget_s
        self.rows: list[HistoryRow] = []
        self.models: BatchModels | None = None
        self.trainings = 0
        self._history = HistoryStats()
        self._next = first
        self._trained_on = 0

    def predicted(self, step: Step) -> FloatArray | None:
        """Predicted reward of each allowed action; None before the first training."""
        if self.models is None:
            return None
        history = history_at(self._history, step, self.catalog)
        matrix = self.models.encoder.matrix(step.record, history, self.catalog, step.allowed)
        return self.models.predicted_rewards(matrix, self.profile, step.cost_usd)

    def learn(self, step: Step, position: int, propensity: float, outcome: SimOutcome,
              reward: float) -> bool:
        """Log one decision; True when it triggered a (re)training."""
        action = self.catalog.actions[step.allowed[position]]
        self.rows.append(history_row(step.task, action, outcome, at=step.at, reward=reward,
                                     propensity=propensity, decision_id=f"own-{step.index}"))
        observe(self._history, step, action, outcome)
        if len(self.rows) < self._next:
            return False
        self.train()
        return True

    def train_if_stale(self) -> None:
        """Train now unless the models already saw every logged decision (end of a warm
        history: ``router train`` before the policy starts)."""
        if len(self.rows) > self._trained_on:
            self.train()

    def train(self) -> None:
        """Train on every logged decision now (``router train`` on the whole log)."""
        _progress(f"  training batch models on the policy's own {len(self.rows)} decisions")
        history = history_from_rows(self.rows, [self.catalog])
        self._trained_on = len(self.rows)
        self._next = 2 * len(self.rows)
        try:
            self.models, _, _ = train_models(
                history, self.catalog, TrainSettings(search_budget_s=self.search_budget_s))
        except TrainingError as exc:  # as `router train`: keep the models there are
            _progress(f"  training refused: {exc}")
            return
        self.trainings += 1


class StackedContender:
    """SquareCB over VW's predicted rewards, stacked with River's and the own-log batch models'
    when ``river`` / ``batch`` are given (see the module docstring)."""

    def __init__(self, name: str, catalog: Catalog, settings: BanditSettings, *,
                 river: bool, batch: OwnLogBatch | None) -> None:
        self.name = name
        self.catalog = catalog
        self.bandit = VWBandit(settings=settings)
        self.lines = ActionLines(catalog)
        self.river = OnlineOutcomeModels() if river else None
        self.batch = batch
        # One stacker per set of available components: the batch models arrive later.
        self.stackers = {
            False: Stacker(prior=(0.0, 1.0, *((0.0,) if river else ()))),
            True: Stacker(prior=(0.0, 1.0, *((0.0,) if river else ()), 0.0)),
        }
        self._columns: dict[int, tuple[bool, FloatArray]] = {}

    def columns(self, step: Step) -> tuple[bool, FloatArray]:
        """Whether the batch models took part, and ``[1, vw, river?, batch?]`` per action."""
        costs = self.bandit.costs(format_shared(step.features.namespaces), self.lines,
                                  step.allowed)
        parts = [np.ones(len(step.allowed)), -costs]
        if self.river is not None:
            actions = [self.catalog.actions[i] for i in step.allowed]
            parts.append(np.asarray(self.river.predict_rewards(step.record, actions)))
        batch = self.batch.predicted(step) if self.batch is not None else None
        if batch is not None:
            parts.append(batch)
        return batch is not None, np.column_stack(parts)

    def choose(self, step: Step, seed: int) -> tuple[int, float]:
        with_batch, columns = self.columns(step)
        predicted = self.stackers[with_batch].predict(columns)
        # The service's rule: its γ schedule and its cap at max_reward (cost = -reward).
        probabilities = self.bandit.squarecb(-np.asarray(predicted, dtype=np.float64))
        position = draw_index(probabilities, seed_from_id(f"{DRAWS}-{seed}-{step.index}"))
        self._columns[step.index] = (with_batch, columns[position])
        return position, probabilities[position]

    def learn(self, step: Step, position: int, propensity: float, outcome: SimOutcome,
              reward: float) -> None:
        decided = self._columns.pop(step.index, None)
        if decided is None:  # a logged decision it did not make (warm history)
            with_batch, columns = self.columns(step)
            decided = (with_batch, columns[position])
        self.stackers[decided[0]].learn_one(decided[1], reward)
        self.bandit.learn_actions(format_shared(step.features.namespaces), self.lines,
                                  step.allowed, position, reward, propensity)
        action = self.catalog.actions[step.allowed[position]]
        if self.river is not None:
            self.river.learn(step.record, action, reward, outcome.verdict is Verdict.APPROVED)
        if self.batch is not None and self.batch.learn(step, position, propensity, outcome,
                                                       reward):
            _progress(f"  {self.name}: stacking weights before retraining "
                      f"{np.round(self.stackers[True].weights, 3).tolist()} (with batch), "
                      f"{np.round(self.stackers[False].weights, 3).tolist()} (without)")

    def history_folded(self) -> None:
        if self.batch is not None:
            self.batch.train_if_stale()

    def close(self) -> None:
        self.bandit.close()


class BatchFeatureContender(ActionFeatureContender):
    """The service's VW with the own-log batch models' predicted reward of each action as an
    action feature (namespace B, crossed with the task namespace); absent before the first
    training. Action lines are built and parsed per request."""

    def __init__(self, name: str, catalog: Catalog, settings: BanditSettings,
                 batch: OwnLogBatch) -> None:
        super().__init__(name, catalog, msgspec.structs.replace(
            settings, interactions=(*settings.interactions, "TB")), draws=DRAWS)
        self.batch = batch

    def _action_lines(self, step: Step) -> list[str]:
        lines = self.policy.action_lines(self.catalog, step.allowed)
        predicted = self.batch.predicted(step)
        if predicted is None:
            return lines
        return [f"{line} |B batch:{p:.4f}" for line, p in zip(lines, predicted, strict=True)]

    def learn(self, step: Step, position: int, propensity: float, outcome: SimOutcome,
              reward: float) -> None:
        self.learn_lines(step, position, propensity, reward)
        self.batch.learn(step, position, propensity, outcome, reward)

    def history_folded(self) -> None:
        self.batch.train_if_stale()
