"""``router bench-learning``: learning quality of routing policies on the simulator, in-process.

Every contender meets the same stream of tasks and the same outcome draws (common random
numbers: step ``i`` of seed ``s`` uses generators seeded ``(s, i)``), learns from the outcome of
its own choice right away, and is scored by the **true expected reward** of what it chose, as a
fraction of the per-task oracle's. Reported beside them: uniform choice and the best fixed action
(chosen in hindsight). Targets (issue 4): the service's policy reaches ≥ 0.90 of the oracle over
20,000 decisions and at least the best fixed action's mean reward within the first 2,000.

The service's policy runs exactly as ``POST /v1/route`` runs it (same feature extraction,
history features, allowed actions, bandit and draw) but without HTTP and the event log, which
is what makes 3 seeds × 20,000 decisions × several contenders take minutes rather than hours;
``router simulate`` drives the real service end to end.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import msgspec
import numpy as np
import numpy.typing as npt
from vowpalwabbit import Workspace

from learners.bandit.sampling import draw_index, seed_from_id
from learners.bandit.vw_bandit import ActionLines, BanditSettings
from learners.bandit.vw_format import format_label, format_shared
from learners.batch.models import BatchModels
from learners.batch.settings import TrainSettings
from learners.batch.training import train_models
from learners.catalog import Action, Catalog
from learners.context import DecisionContext
from learners.drift import BanditDriftSettings
from learners.estimates import estimate_action_cost
from learners.features import ContextFeatures, ContextRecord, describe_context
from learners.history import HistoryFeatures, HistoryStats, OutcomeFacts
from learners.online_models import OnlineOutcomeModels, squarecb
from learners.online_stats import ActionPrediction
from learners.policy import LearnEvent, OnlinePolicy
from learners.reward import Outcome, RewardProfile, Verdict, compute_reward
from offline.bandit_spec import (
    METHOD_PARAMETERS,
    BanditSpecError,
    is_bandit_spec,
    parse_bandit_spec,
)
from offline.dataset import history_from_rows
from offline.history_file import HistoryRow
from offline.simulate import fallback_indices
from offline.synthetic import generate_history, history_row
from offline.world import SimOutcome, SimTask, World
from router.schemas import RouteRequest
from router.settings import load_settings

FloatArray = npt.NDArray[np.float64]
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STEP = timedelta(minutes=3)
TENANT = "bench"
TARGET_FRACTION = 0.90
EARLY = 2000


def _progress(message: str) -> None:
    print(f"bench-learning: {message}", file=sys.stderr, flush=True)


class Step(msgspec.Struct):
    """One decision point, shared by every contender of a seed."""

    index: int
    task: SimTask
    at: datetime
    features: ContextFeatures
    record: ContextRecord
    allowed: list[int]
    rewards: FloatArray  # true expected reward of each allowed action
    prior_time_s: list[float]
    cost_usd: list[float]  # the catalog estimate of each allowed action's cost


class Contender(Protocol):
    name: str

    def choose(self, step: Step, seed: int) -> tuple[int, float]:
        """Position in ``step.allowed`` and its propensity."""
        ...

    def learn(self, step: Step, position: int, propensity: float, outcome: SimOutcome,
              reward: float) -> None: ...


def step_facts(step: Step, action: Action, outcome: SimOutcome) -> OutcomeFacts:
    """What one step's outcome adds to the historical features."""
    task = step.task
    return OutcomeFacts(
        tenant_id=TENANT, decided_at=step.at, task_type=task.type, language=task.language,
        project_id=task.project_id, agent=task.agent, model=action.model.name,
        template=action.template.name, approved=outcome.verdict is Verdict.APPROVED,
        quality=outcome.quality)


def observe(history: HistoryStats, step: Step, action: Action, outcome: SimOutcome) -> None:
    """Fold one step's decision and outcome into ``history``."""
    history.observe_decision(TENANT, step.task.project_id, step.at)
    history.learn_one(step_facts(step, action, outcome))


def history_at(history: HistoryStats, step: Step, catalog: Catalog) -> HistoryFeatures:
    """The historical features known at ``step``'s decision."""
    return history.features(
        tenant_id=TENANT, task_type=step.record.task_type, language=step.record.language,
        project_id=step.task.project_id, agent=step.record.agent,
        models=tuple(sorted(catalog.model_names)),
        templates=tuple(sorted(catalog.template_names)), at=step.at)


class PredictionAudit:
    """P(approved) of each chosen action as predicted *before* its outcome by the service's
    online statistics (:class:`learners.online_stats.OutcomeStats`, what the response carries
    before any batch model), River (:class:`learners.online_models.OnlineOutcomeModels`),
    optionally batch models trained on warm history, and the mean of River and batch."""

    def __init__(self, batch: BatchModels | None, train_own_at: int | None = None,
                 catalog: Catalog | None = None) -> None:
        self.river = OnlineOutcomeModels()
        self.batch = batch
        self.history = HistoryStats()
        self.outcomes: list[float] = []
        self.predicted: dict[str, list[float]] = {"online stats": [], "river": []}
        self.errors: dict[str, list[float]] = {
            "quality: online stats": [], "quality: river": [],
            "log time: online stats": [], "log time: river": []}
        if batch is not None:
            self.predicted.update({"batch (5k warm)": [], "mean of river and batch": []})
        # Batch models trained on this policy's own log once it holds ``train_own_at``
        # decisions (what `router train` does in a running service); scored from then on.
        self.train_own_at = train_own_at
        self.catalog = catalog
        self.own_rows: list[HistoryRow] = []
        self.own: BatchModels | None = None
        if train_own_at is not None:
            self.predicted.update({"batch (own log)": [], "mean of river and own batch": []})

    def record(self, step: Step, catalog: Catalog, position: int, stats: float,
               approved: bool) -> None:
        action = catalog.actions[step.allowed[position]]
        river = self.river.predict_success(step.record, [action])[0]
        self.predicted["online stats"].append(stats)
        self.predicted["river"].append(river)
        if self.batch is not None:
            batch = self._batch_success(self.batch, step, catalog, position)
            self.predicted["batch (5k warm)"].append(batch)
            self.predicted["mean of river and batch"].append((river + batch) / 2.0)
        if self.own is not None:
            own = self._batch_success(self.own, step, catalog, position)
            self.predicted["batch (own log)"].append(own)
            self.predicted["mean of river and own batch"].append((river + own) / 2.0)
        self.outcomes.append(1.0 if approved else 0.0)

    def _batch_success(self, models: BatchModels, step: Step, catalog: Catalog,
                       position: int) -> float:
        matrix = models.encoder.matrix(step.record, history_at(self.history, step, catalog),
                                       catalog, [step.allowed[position]])
        return float(models.predict_success(matrix)[0])

    def learn_own(self, step: Step, catalog: Catalog, position: int, propensity: float,
                  outcome: SimOutcome, reward: float) -> None:
        """Log the decision for the own-log batch models; train them when it is time."""
        if self.train_own_at is None:
            return
        action = catalog.actions[step.allowed[position]]
        self.own_rows.append(history_row(step.task, action, outcome, at=step.at,
                                         reward=reward, propensity=propensity,
                                         decision_id=f"bench-{step.index}"))
        if self.own is None and len(self.own_rows) == self.train_own_at:
            _progress(f"training batch models on the policy's own {len(self.own_rows)} "
                      "decisions")
            history = history_from_rows(self.own_rows, [catalog])
            self.own, _, _ = train_models(history, catalog, TrainSettings(search_budget_s=10.0))

    def record_quality_time(self, step: Step, catalog: Catalog, position: int,
                            stats: ActionPrediction, outcome: SimOutcome) -> None:
        """Quality and time of the chosen action, predicted before its outcome."""
        action = catalog.actions[step.allowed[position]]
        prior = step.prior_time_s[position]
        if outcome.quality is not None:
            self.errors["quality: online stats"].append(abs(stats.quality - outcome.quality))
            self.errors["quality: river"].append(
                abs(self.river.predict_quality(step.record, action) - outcome.quality))
        if outcome.generation_time_s > 0:
            actual = math.log(outcome.generation_time_s)
            self.errors["log time: online stats"].append(abs(math.log(stats.time_s) - actual))
            river_time = prior * self.river.predict_time_ratio(step.record, action)
            self.errors["log time: river"].append(abs(math.log(river_time) - actual))

    def mean_errors(self) -> dict[str, float]:
        return {name: float(np.mean(v)) for name, v in self.errors.items() if v}

    def learn(self, step: Step, catalog: Catalog, position: int, reward: float,
              outcome: SimOutcome) -> None:
        action = catalog.actions[step.allowed[position]]
        approved = outcome.verdict is Verdict.APPROVED
        self.river.learn(step.record, action, reward, approved, quality=outcome.quality,
                         time_ratio=outcome.generation_time_s / step.prior_time_s[position])
        observe(self.history, step, action, outcome)

    def scores(self, start: int = 0) -> dict[str, dict[str, float]]:
        """Log-loss and Brier score of each predictor over outcomes ``start`` onwards."""
        out = {}
        n = len(self.outcomes)
        for name, values in self.predicted.items():
            if not values:
                continue
            first = max(start, n - len(values))  # own-log predictors start later
            y = np.asarray(self.outcomes[first:])
            p = np.clip(np.asarray(values[first - (n - len(values)):]), 1e-6, 1 - 1e-6)
            out[name] = {
                "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
                "brier": float(np.mean((p - y) ** 2)),
                "n": float(len(y)),
            }
        return out


class PolicyContender:
    """The service's online policy (:class:`OnlinePolicy`) under some bandit settings."""

    def __init__(self, name: str, catalog: Catalog, settings: BanditSettings,
                 drift: BanditDriftSettings | None = None,
                 audit: PredictionAudit | None = None) -> None:
        self.name = name
        self.catalog = catalog
        self.policy = OnlinePolicy(settings=settings, catalogs={catalog.fingerprint: catalog},
                                   drift=drift)
        self.audit = audit

    def choose(self, step: Step, seed: int) -> tuple[int, float]:
        probabilities = self.policy.probabilities(step.features, self.catalog, step.allowed,
                                                  step.record)
        position = draw_index(probabilities, seed_from_id(f"{self.name}-{seed}-{step.index}"))
        return position, probabilities[position]

    def learn(self, step: Step, position: int, propensity: float, outcome: SimOutcome,
              reward: float) -> None:
        action = self.catalog.actions[step.allowed[position]]
        task = step.task
        if self.audit is not None:
            stats = self.policy.predict(self.catalog, action.index, step.prior_time_s[position])
            self.audit.record(step, self.catalog, position, stats.success_probability,
                              outcome.verdict is Verdict.APPROVED)
            self.audit.record_quality_time(step, self.catalog, position, stats, outcome)
            self.audit.learn(step, self.catalog, position, reward, outcome)
            self.audit.learn_own(step, self.catalog, position, propensity, outcome, reward)
        self.policy.learn(LearnEvent(
            seq=step.index + 1, catalog_fingerprint=self.catalog.fingerprint,
            features=step.features, allowed=step.allowed, chosen_position=position,
            propensity=propensity, reward=reward, verdict=outcome.verdict,
            quality=outcome.quality, generation_time_s=outcome.generation_time_s,
            prior_time_s=step.prior_time_s[position], record=step.record,
            facts=step_facts(step, action, outcome),
        ))
        self.policy.history.observe_decision(TENANT, task.project_id, step.at)

    def close(self) -> None:
        self.policy.close()


class RiverContender:
    """River alone: SquareCB over the rewards River's online linear model predicts
    (:mod:`learners.online_models`), with VW's γ schedule (gamma_scale · √t)."""

    name = "river"

    def __init__(self, catalog: Catalog, bandit: BanditSettings) -> None:
        self.catalog = catalog
        self.gamma_scale = bandit.gamma_scale
        self.models = OnlineOutcomeModels()

    def choose(self, step: Step, seed: int) -> tuple[int, float]:
        actions = [self.catalog.actions[i] for i in step.allowed]
        predicted = self.models.predict_rewards(step.record, actions)
        gamma = self.gamma_scale * math.sqrt(self.models.learned + 1)
        probabilities = squarecb(predicted, gamma)
        position = draw_index(probabilities, seed_from_id(f"river-{seed}-{step.index}"))
        return position, probabilities[position]

    def learn(self, step: Step, position: int, propensity: float, outcome: SimOutcome,
              reward: float) -> None:
        action = self.catalog.actions[step.allowed[position]]
        self.models.learn(step.record, action, reward, outcome.verdict is Verdict.APPROVED)


class ActionFeatureContender(PolicyContender, ABC):
    """The service's VW with extra per-request action features: each decision's action lines
    are built (:meth:`_action_lines`) and parsed per request, kept until its outcome, and learned
    with the text (a logged decision it did not make gets them built at learning time)."""

    def __init__(self, name: str, catalog: Catalog, settings: BanditSettings,
                 drift: BanditDriftSettings | None = None, *, draws: str | None = None) -> None:
        super().__init__(name, catalog, settings, drift)
        self._draws = name if draws is None else draws
        self._lines: dict[int, list[str]] = {}

    @abstractmethod
    def _action_lines(self, step: Step) -> list[str]:
        """The VW action lines of ``step``'s allowed actions with this contender's features."""

    def choose(self, step: Step, seed: int) -> tuple[int, float]:
        lines = self._action_lines(step)
        self._lines[step.index] = lines
        probabilities = self.policy.probabilities_for_lines(step.features, lines)
        position = draw_index(probabilities,
                              seed_from_id(f"{self._draws}-{seed}-{step.index}"))
        return position, probabilities[position]

    def learn_lines(self, step: Step, position: int, propensity: float, reward: float) -> None:
        lines = self._lines.pop(step.index, None)
        if lines is None:  # a logged decision it did not make (--warm history)
            lines = self._action_lines(step)
        self.policy.learn_lines(step.features, lines, position, reward, propensity)


class HybridContender(ActionFeatureContender):
    """VW (the service's settings) with River's predicted reward of each action as an action
    feature (namespace R, crossed with the task namespace): VW learns how far to trust River
    per kind of task and explores around it. Action lines are built per request here."""

    def __init__(self, name: str, catalog: Catalog, settings: BanditSettings,
                 drift: BanditDriftSettings | None = None) -> None:
        interactions = (*settings.interactions, "TR")
        super().__init__(name, catalog, msgspec.structs.replace(settings,
                                                                interactions=interactions),
                         drift)
        self.models = OnlineOutcomeModels()

    def _action_lines(self, step: Step) -> list[str]:
        actions = [self.catalog.actions[i] for i in step.allowed]
        predicted = self.models.predict_rewards(step.record, actions)
        base = self.policy.action_lines(self.catalog, step.allowed)
        return [f"{line} |R river:{p:.4f}" for line, p in zip(base, predicted, strict=True)]

    def learn(self, step: Step, position: int, propensity: float, outcome: SimOutcome,
              reward: float) -> None:
        self.learn_lines(step, position, propensity, reward)
        action = self.catalog.actions[step.allowed[position]]
        self.models.learn(step.record, action, reward, outcome.verdict is Verdict.APPROVED)


class BatchContender:
    """Batch models trained once (before the run) on uniformly logged decisions of the same
    world; each decision takes the highest predicted reward (``batch-greedy``), or — as
    ``hybrid-batch`` — hands the predictions to VW as an action feature next to River's."""

    def __init__(self, name: str, catalog: Catalog, models: BatchModels,
                 profile: RewardProfile) -> None:
        self.name = name
        self.catalog = catalog
        self.models = models
        self.profile = profile
        self.history = HistoryStats()

    def predicted(self, step: Step) -> FloatArray:
        history = history_at(self.history, step, self.catalog)
        matrix = self.models.encoder.matrix(step.record, history, self.catalog, step.allowed)
        return self.models.predicted_rewards(matrix, self.profile, step.cost_usd)

    def choose(self, step: Step, seed: int) -> tuple[int, float]:
        return int(np.argmax(self.predicted(step))), 1.0

    def learn(self, step: Step, position: int, propensity: float, outcome: SimOutcome,
              reward: float) -> None:
        observe(self.history, step, self.catalog.actions[step.allowed[position]], outcome)


class BatchHybridContender(HybridContender):
    """VW with the batch models' and River's predicted rewards as action features."""

    def __init__(self, catalog: Catalog, settings: BanditSettings,
                 drift: BanditDriftSettings | None, batch: BatchContender) -> None:
        super().__init__("hybrid-batch", catalog, settings, drift)
        self.batch = batch

    def _action_lines(self, step: Step) -> list[str]:
        lines = super()._action_lines(step)
        predicted = self.batch.predicted(step)
        return [f"{line} batch:{p:.4f}" for line, p in zip(lines, predicted, strict=True)]

    def learn(self, step: Step, position: int, propensity: float, outcome: SimOutcome,
              reward: float) -> None:
        super().learn(step, position, propensity, outcome, reward)
        self.batch.learn(step, position, propensity, outcome, reward)


class ResidualHybridContender:
    """The batch models' predicted reward as the base, VW (``--cb_adf``, the service's features
    and interactions, no built-in exploration) learning the residual reward − base of the chosen
    action, and SquareCB over base + residual (VW's γ schedule): it starts where the batch
    models are and corrects them from every outcome."""

    def __init__(self, catalog: Catalog, settings: BanditSettings, batch: BatchContender) -> None:
        self.name = "hybrid-residual"
        self.catalog = catalog
        self.batch = batch
        self.gamma_scale = settings.gamma_scale
        interactions = " ".join(f"-q {pair}" for pair in settings.interactions)
        self.workspace = Workspace(
            f"--cb_adf --quiet -b {settings.bits} -l {settings.learning_rate} "
            f"--random_seed {settings.seed} {interactions}")
        self.lines = ActionLines(catalog)
        self.parsed = [self.workspace.example(line) for line in self.lines.lines]
        self.learned = 0
        self._base: dict[int, FloatArray] = {}

    def choose(self, step: Step, seed: int) -> tuple[int, float]:
        base = self.batch.predicted(step)
        shared = self.workspace.example(format_shared(step.features.namespaces))
        costs = self.workspace.predict([shared, *(self.parsed[i] for i in step.allowed)])
        predicted = [float(b - c) for b, c in zip(base, costs, strict=True)]
        probabilities = squarecb(predicted, self.gamma_scale * math.sqrt(self.learned + 1))
        position = draw_index(probabilities, seed_from_id(f"{self.name}-{seed}-{step.index}"))
        self._base[step.index] = base
        return position, probabilities[position]

    def learn(self, step: Step, position: int, propensity: float, outcome: SimOutcome,
              reward: float) -> None:
        base = self._base.pop(step.index)
        lines = self.lines.select(step.allowed)
        example = [format_shared(step.features.namespaces), *lines]
        residual = reward - float(base[position])
        example[position + 1] = f"{format_label(residual, propensity)} {lines[position]}"
        self.workspace.learn(example)
        self.learned += 1
        self.batch.learn(step, position, propensity, outcome, reward)

    def close(self) -> None:
        self.workspace.finish()


WARM_DECISIONS = 5000
OWN_LOG_DECISIONS = 5000


def warm_batch_models(world: World, seed: int) -> BatchModels:
    """Batch models trained on ``WARM_DECISIONS`` uniformly logged decisions of ``world``
    (tasks from another seed than the benchmark's)."""
    rows = generate_history(world, WARM_DECISIONS, seed=seed + 10_000)
    history = history_from_rows(rows, [world.catalog])
    models, _, _ = train_models(history, world.catalog, TrainSettings(search_budget_s=10.0))
    return models


class UniformContender:
    name = "uniform"

    def choose(self, step: Step, seed: int) -> tuple[int, float]:
        n = len(step.allowed)
        rng = np.random.default_rng([seed, step.index, 7])
        return int(rng.integers(n)), 1.0 / n

    def learn(self, step: Step, position: int, propensity: float, outcome: SimOutcome,
              reward: float) -> None:
        return None


def build_steps(world: World, n: int, seed: int, profile: RewardProfile) -> list[Step]:
    """The task stream of one seed with every allowed action's true expected reward."""
    catalog = world.catalog
    steps = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        task = world.sample_task(rng, step=i)
        request = msgspec.convert(msgspec.to_builtins(task.route_body()), RouteRequest)
        context = DecisionContext(task=request.task, caller=request.context,
                                  features=dict(request.features), objective="balanced")
        at = START + i * STEP
        features, record = describe_context(context, at)
        allowed = catalog.indices_for_language(task.language)
        actions = [catalog.actions[a] for a in allowed]
        rag = task.rag.examples if task.rag else 0
        estimates = [estimate_action_cost(a, request.task, features.complexity, rag)
                     for a in actions]
        steps.append(Step(
            index=i, task=task, at=at, features=features, record=record, allowed=list(allowed),
            rewards=np.array([world.expected_reward(task, a, profile) for a in actions]),
            prior_time_s=[e.latency_s for e in estimates],
            cost_usd=[e.cost_usd for e in estimates],
        ))
    return steps


def fixed_action_rewards(steps: Sequence[Step], catalog: Catalog) -> FloatArray:
    """True expected reward of always playing each catalog action, per step (rows) and action
    (columns). A fixed action with a language-specific template falls back, on other
    languages, to the same model and temperature with a general template (as in
    ``router simulate``)."""
    fallback = fallback_indices(catalog)
    per_action = np.empty((len(steps), len(catalog)))
    for row, step in enumerate(steps):
        full = np.full(len(catalog), np.nan)
        full[step.allowed] = step.rewards
        per_action[row] = np.where(np.isnan(full), full[fallback], full)
    return per_action


class ContenderResult(msgspec.Struct, frozen=True):
    name: str
    seed: int
    mean_reward: float
    fraction_of_oracle: float
    early_mean_reward: float
    seconds: float
    drift_model_share_before: float | None = None
    decisions_to_move_away: int | None = None
    drift_alarms: list[str] = []  # "outcome N: description" of every alarm the policy raised


def run_contender(contender: Contender, world: World, steps: Sequence[Step], seed: int,
                  profile: RewardProfile, history: Sequence[Step] = ()
                  ) -> tuple[FloatArray, list[str]]:
    """The true expected reward of each choice the contender made, and its model. The
    ``history`` steps are decided by a uniform logger and folded into the contender first (the
    warm-started protocol); a contender with a ``history_folded()`` method is told when that is
    done."""
    catalog = world.catalog
    logger = UniformContender()
    for step in history:
        position, propensity = logger.choose(step, seed)
        outcome, reward = _outcome(world, step, catalog.actions[step.allowed[position]], seed,
                                   profile)
        contender.learn(step, position, propensity, outcome, reward)
    folded = getattr(contender, "history_folded", None)
    if history and folded is not None:
        folded()
    chosen = np.empty(len(steps))
    models: list[str] = []
    for row, step in enumerate(steps):
        position, propensity = contender.choose(step, seed)
        action = catalog.actions[step.allowed[position]]
        outcome, reward = _outcome(world, step, action, seed, profile)
        contender.learn(step, position, propensity, outcome, reward)
        chosen[row] = step.rewards[position]
        models.append(action.model.name)
    return chosen, models


def _outcome(world: World, step: Step, action: Action, seed: int,
             profile: RewardProfile) -> tuple[SimOutcome, float]:
    """The outcome of ``action`` at ``step`` (the same draw for every contender) and its reward."""
    outcome = world.outcome(step.task, action, np.random.default_rng([seed, step.index, 1]))
    reward = compute_reward(
        Outcome(outcome.verdict, outcome.quality, outcome.generation_time_s,
                outcome.cost_usd, outcome.regenerations), profile)
    return outcome, reward


DRIFT_WINDOW = 200


def decisions_to_move_away(models: Sequence[str], drift_model: str, drift_at: int) -> int | None:
    """Decisions after ``drift_at`` until the share of ``drift_model`` in the trailing
    ``DRIFT_WINDOW`` choices falls below half its share in the window before the drift (None:
    never, or the model had no traffic to lose)."""
    used = np.array([m == drift_model for m in models], dtype=np.float64)
    before = used[max(0, drift_at - DRIFT_WINDOW):drift_at].mean() if drift_at > 0 else 0.0
    if before <= 0.0:
        return None
    for end in range(drift_at + DRIFT_WINDOW, len(used) + 1):
        if used[end - DRIFT_WINDOW:end].mean() < before / 2.0:
            return end - drift_at
    return None


# River / batch / hybrid contenders (not VW settings variants): see contenders().
EXPERIMENTS = ("river", "hybrid", "batch-greedy", "hybrid-batch", "hybrid-residual",
               "stack-vw", "stack-vw-river", "stack-own-batch",
               "hybrid-own-batch")


def contender_settings(bandit: BanditSettings,
                       names: Sequence[str]) -> dict[str, BanditSettings | None]:
    """The bandit settings of each named contender (None: not a VW policy). ``service`` is the
    configured ``[bandit]``, ``vw-epsilon`` the same with ε-greedy, and ``vw:...`` an
    exploration variant of it (:mod:`offline.bandit_spec`). Raises SystemExit on a bad name."""
    fixed: dict[str, BanditSettings | None] = {
        "service": bandit,
        "vw-epsilon": msgspec.structs.replace(bandit, exploration="epsilon", stack_river=False),
        "uniform": None,
        **dict.fromkeys(EXPERIMENTS),
    }
    chosen: dict[str, BanditSettings | None] = {}
    for name in names:
        if name in fixed:
            chosen[name] = fixed[name]
        elif is_bandit_spec(name):
            try:
                chosen[name] = parse_bandit_spec(name).apply(bandit)
            except BanditSpecError as exc:
                raise SystemExit(f"bench-learning: contender {exc}") from exc
        else:
            raise SystemExit(f"bench-learning: unknown contender {name!r}; known: "
                             f"{', '.join(fixed)} or vw:METHOD[=VALUE] with METHOD one of "
                             f"{', '.join(METHOD_PARAMETERS)} (e.g. vw:squarecb=200)")
    return chosen


def contenders(catalog: Catalog, bandit: BanditSettings, drift: BanditDriftSettings,
               names: Sequence[str], world: World, seed: int,
               profile: RewardProfile, audit: bool = False) -> list[Contender]:
    """The named contenders: VW policies (``service``, ``vw-epsilon``, ``vw:...`` specs),
    ``uniform``, and the River / batch / hybrid experiments of issue 4."""
    # offline.hybrid_bench builds on this module's steps and contenders: imported here.
    from offline.hybrid_bench import BatchFeatureContender, OwnLogBatch, StackedContender

    warm: list[BatchModels] = []

    def batch_models() -> BatchModels:
        if not warm:
            _progress(f"training batch models on {WARM_DECISIONS} uniformly logged decisions")
            warm.append(warm_batch_models(world, seed))
        return warm[0]

    experiments: dict[str, Callable[[], Contender]] = {
        "batch-greedy": lambda: BatchContender("batch-greedy", catalog, batch_models(),
                                               profile),
        "hybrid-residual": lambda: ResidualHybridContender(
            catalog, bandit, BatchContender("hybrid-residual", catalog, batch_models(), profile)),
        "hybrid-batch": lambda: BatchHybridContender(
            catalog, bandit, drift,
            BatchContender("hybrid-batch", catalog, batch_models(), profile)),
        "river": lambda: RiverContender(catalog, bandit),
        "hybrid": lambda: HybridContender("hybrid", catalog, bandit, drift),
        "stack-vw": lambda: StackedContender("stack-vw", catalog, bandit, river=False,
                                             batch=None),
        "stack-vw-river": lambda: StackedContender("stack-vw-river", catalog, bandit,
                                                   river=True, batch=None),
        "stack-own-batch": lambda: StackedContender(
            "stack-own-batch", catalog, bandit, river=True, batch=OwnLogBatch(catalog, profile)),
        "hybrid-own-batch": lambda: BatchFeatureContender(
            "hybrid-own-batch", catalog, bandit, OwnLogBatch(catalog, profile)),
    }
    made: list[Contender] = []
    for name, settings in contender_settings(bandit, names).items():
        if name in experiments:
            made.append(experiments[name]())
        elif settings is None:
            made.append(UniformContender())
        elif name == "service" and audit:
            made.append(PolicyContender(
                name, catalog, settings, drift,
                PredictionAudit(batch_models(), train_own_at=OWN_LOG_DECISIONS, catalog=catalog)))
        else:
            made.append(PolicyContender(name, catalog, settings, drift))
    return made


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=20_000, help="decisions per seed (20,000)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--contenders", nargs="+", default=["service", "vw-epsilon", "uniform"],
                        help="service, vw-epsilon, uniform, or exploration variants of the "
                        "service's policy: vw:epsilon=0.05, vw:squarecb=200, vw:cover=5, "
                        "vw:bag=5, vw:softmax=10, vw:regcbopt, vw:bag=5,epsilon=0.1, ...")
    parser.add_argument("--config", help="TOML config (default: configs/default.toml)")
    parser.add_argument("--profile", default="balanced")
    parser.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    parser.add_argument("--prediction-audit", action="store_true",
                        help="also score the service's P(approved) predictions: online "
                             "statistics, River, batch models (5k warm) and their mean")
    parser.add_argument("--warm", type=int, default=0, metavar="N",
                        help="warm start: N uniformly logged decisions (before the N scored "
                             "ones) that every contender folds in first (default 0)")
    parser.add_argument("--drift-model", help="model whose success drops at --drift-at")
    parser.add_argument("--drift-at", type=int, help="decision number where the drift starts")


def run(args: argparse.Namespace) -> int:
    if (args.drift_model is None) != (args.drift_at is None):
        print("router bench-learning: --drift-model and --drift-at go together", file=sys.stderr)
        return 2
    if args.warm and args.drift_model is not None:
        print("router bench-learning: --warm and --drift-model do not go together",
              file=sys.stderr)
        return 2
    settings = load_settings(args.config, {})
    contender_settings(settings.bandit, args.contenders)  # a bad name fails before any work
    catalog = settings.catalog
    if args.profile not in settings.profiles:
        print(f"router bench-learning: unknown --profile {args.profile!r}; known: "
              f"{', '.join(sorted(settings.profiles))}", file=sys.stderr)
        return 2
    profile = settings.profiles[args.profile]
    results: list[ContenderResult] = []
    references: dict[int, dict[str, float]] = {}
    for seed in args.seeds:
        world = World(catalog=catalog, seed=seed, drift_model=args.drift_model,
                      drift_at=args.drift_at)
        _progress(f"seed {seed}: {args.warm + args.n} tasks and their true rewards")
        # --warm: the first steps are a uniformly logged history every contender folds first.
        everything = build_steps(world, args.warm + args.n, seed, profile)
        history, steps = everything[:args.warm], everything[args.warm:]
        oracle = np.array([s.rewards.max() for s in steps])
        per_action = fixed_action_rewards(steps, catalog)
        best = float(per_action.mean(axis=0).max())
        early = min(EARLY, args.n)
        best_early = float(per_action[:early].mean(axis=0).max())
        references[seed] = {"oracle": float(oracle.mean()), "best_fixed": best,
                            "best_fixed_early": best_early,
                            "oracle_early": float(oracle[:early].mean())}
        for contender in contenders(catalog, settings.bandit, settings.drift,
                                     args.contenders, world, seed, profile,
                                     args.prediction_audit):
            started = time.perf_counter()
            chosen, models = run_contender(contender, world, steps, seed, profile, history)
            alarms = ([f"outcome {a.detected_at}: {a.description}"
                       for a in contender.policy.drift.history]
                      if isinstance(contender, PolicyContender) else [])
            close = getattr(contender, "close", None)
            if close is not None:
                close()
            result = ContenderResult(
                name=contender.name, seed=seed, mean_reward=float(chosen.mean()),
                fraction_of_oracle=float(chosen.mean() / oracle.mean()),
                early_mean_reward=float(chosen[:early].mean()),
                seconds=round(time.perf_counter() - started, 1), drift_alarms=alarms)
            for alarm in alarms:
                _progress(f"  drift alarm at {alarm}")
            audit = contender.audit if isinstance(contender, PolicyContender) else None
            if audit is not None:
                windows = ((0, "all"), (min(EARLY, args.n), f"after {EARLY}"),
                           (min(OWN_LOG_DECISIONS, args.n), f"after {OWN_LOG_DECISIONS}"))
                for start, label in windows:
                    for predictor, score in audit.scores(start).items():
                        _progress(f"  P(approved) by {predictor:<27} ({label}): log-loss "
                                  f"{score['log_loss']:.4f}, Brier {score['brier']:.4f} "
                                  f"over {score['n']:.0f}")
                for name, error in audit.mean_errors().items():
                    _progress(f"  mean absolute error of {name}: {error:.4f}")
            if args.drift_model is not None:
                share = [m == args.drift_model for m in
                         models[max(0, args.drift_at - DRIFT_WINDOW):args.drift_at]]
                result = msgspec.structs.replace(
                    result, drift_model_share_before=sum(share) / max(len(share), 1),
                    decisions_to_move_away=decisions_to_move_away(
                        models, args.drift_model, args.drift_at))
                _progress(f"  {args.drift_model}: share {result.drift_model_share_before:.3f} "
                          f"before the drift; moved away after "
                          f"{result.decisions_to_move_away} decisions")
            results.append(result)
            _progress(f"seed {seed} {contender.name}: {result.mean_reward:.4f} "
                      f"({result.fraction_of_oracle:.3f} of oracle) in {result.seconds} s")
    print(format_table(results, references, args))
    if args.json:
        Path(args.json).write_bytes(msgspec.json.format(msgspec.json.encode(
            {"results": results, "references": references})))
    service = [r for r in results if r.name == "service"]
    if not service:
        return 0
    fraction_ok = all(r.fraction_of_oracle >= TARGET_FRACTION for r in service)
    early_ok = all(r.early_mean_reward >= references[r.seed]["best_fixed_early"]
                   for r in service)
    return 0 if fraction_ok and early_ok else 1


def _mean_sd(values: Sequence[float]) -> str:
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / max(len(values) - 1, 1))
    return f"{mean:.4f} ± {sd:.4f}"


def command_line(args: argparse.Namespace, seeds: Sequence[int]) -> str:
    """The ``router bench-learning`` command that reproduces a run with ``args``."""
    parts = [f"router bench-learning --n {args.n}"]
    if args.warm:
        parts.append(f"--warm {args.warm}")
    parts.append(f"--seeds {' '.join(map(str, seeds))}")
    parts.append(f"--contenders {' '.join(args.contenders)}")
    if args.config:
        parts.append(f"--config {args.config}")
    if args.profile != "balanced":
        parts.append(f"--profile {args.profile}")
    if args.drift_model is not None:
        parts.append(f"--drift-model {args.drift_model} --drift-at {args.drift_at}")
    return " ".join(parts)


def format_table(results: Sequence[ContenderResult], references: dict[int, dict[str, float]],
                 args: argparse.Namespace) -> str:
    seeds = sorted(references)
    lines = [f"command: {command_line(args, seeds)}",
             f"{'policy':<24}{'mean reward':>20}{'of oracle':>18}{'first ' + str(EARLY):>20}"]
    for name in dict.fromkeys(r.name for r in results):
        rows = [r for r in results if r.name == name]
        lines.append(f"{name:<24}{_mean_sd([r.mean_reward for r in rows]):>20}"
                     f"{_mean_sd([r.fraction_of_oracle for r in rows]):>18}"
                     f"{_mean_sd([r.early_mean_reward for r in rows]):>20}")
    for key, label in (("best_fixed", "best fixed"), ("oracle", "oracle")):
        values = [references[s][key] for s in seeds]
        early = [references[s][f"{key}_early"] for s in seeds]
        fractions = [references[s][key] / references[s]["oracle"] for s in seeds]
        lines.append(f"{label:<24}{_mean_sd(values):>20}{_mean_sd(fractions):>18}"
                     f"{_mean_sd(early):>20}")
    return "\n".join(lines)
