"""Drive an online policy over real outcomes, in-process, the way the service does.

Each prompt is one decision: the policy gives probabilities over the 9 models from the prompt's
features, one model is drawn with an RNG seeded from the decision id (as
:meth:`router.services.routing.RoutingService.route` does), its real score is looked up, and
the policy learns ``reward = score − λ·estimated cost`` with the features and propensity of that
decision (as the feedback path does). Nothing else about the prompt is revealed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from learners.bandit.sampling import draw_index, seed_from_id
from learners.catalog import Catalog
from learners.decision import LoggedDecision, LoggedOutcome, StoredFeatures, learn_event
from learners.features import ContextFeatures
from learners.policy import LearnEvent
from learners.reward import Verdict
from offline.bench.realdata.policies import RoutingPolicy

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# A score at or above this counts as approved for the policy's outcome statistics (most scores
# are 0/1; the reward itself uses the exact score).
APPROVED_AT = 0.5
# Replayed prompts have no decision time; the learners here do not read it (no history).
DECIDED_AT = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Workload:
    """Prompts with their features, real scores and estimated costs (prompt × model)."""

    ids: list[str]
    features: list[ContextFeatures]
    scores: FloatArray
    costs: FloatArray

    def __post_init__(self) -> None:
        n = len(self.ids)
        if len(self.features) != n or self.scores.shape[0] != n or self.costs.shape != (
            self.scores.shape
        ):
            raise ValueError("ids, features, scores and costs must describe the same prompts")

    def __len__(self) -> int:
        return len(self.ids)


class _EventMaker:
    """LearnEvents of one catalog, numbered in the order they are learned, built by the
    decision core (:func:`learners.decision.learn_event`) from what a decision logs."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.allowed = list(range(len(catalog)))
        self.seq = 0

    def event(self, features: ContextFeatures, chosen: int, propensity: float, score: float,
              reward: float) -> LearnEvent:
        self.seq += 1
        action = self.catalog.actions[chosen]
        decision = LoggedDecision(
            tenant_id="", decided_at=DECIDED_AT, project_id=None, task_type=None,
            catalog_fingerprint=self.catalog.fingerprint,
            features=StoredFeatures(namespaces=features.namespaces,
                                    complexity=features.complexity,
                                    prior_time_s=action.model.typical_latency_s),
            allowed=self.allowed, chosen_position=chosen, chosen_action=action.id,
            propensity=propensity)
        outcome = LoggedOutcome(
            verdict=Verdict.APPROVED if score >= APPROVED_AT else Verdict.REJECTED,
            reward=reward, quality=10.0 * min(max(score, 0.0), 1.0))
        return learn_event(decision, outcome, seq=self.seq)


def warm_start(policy: RoutingPolicy, catalog: Catalog, history: Workload, lam: float,
               seed: int) -> None:
    """Fold a full-information history into ``policy``: every model was run on every history
    prompt, so each prompt gives one outcome per model, learned with propensity 1 (no action
    was selected by a policy, so there is no selection to correct). Prompts come in a random
    order seeded by ``seed``; a prompt's 9 outcomes are learned one after the other."""
    maker = _EventMaker(catalog)
    order = np.random.default_rng([seed, 1]).permutation(len(history))
    for row in order:
        features = history.features[row]
        for action in range(len(catalog)):
            score = float(history.scores[row, action])
            reward = score - lam * float(history.costs[row, action])
            policy.learn(maker.event(features, action, 1.0, score, reward))


def route_online(policy: RoutingPolicy, catalog: Catalog, workload: Workload, lam: float,
                 seed: int, progress: Callable[[int], None] | None = None) -> IntArray:
    """One pass over ``workload`` in a random order seeded by ``seed``: decide, observe the
    chosen model's real score, learn. Returns the chosen model of every prompt (row order)."""
    if len(catalog) != workload.scores.shape[1]:
        raise ValueError(f"the catalog has {len(catalog)} actions for "
                         f"{workload.scores.shape[1]} scored models")
    maker = _EventMaker(catalog)
    choices = np.full(len(workload), -1, dtype=np.int64)
    order = np.random.default_rng([seed, 2]).permutation(len(workload))
    for step, row in enumerate(order):
        features = workload.features[row]
        probabilities = policy.probabilities(features, catalog, maker.allowed)
        chosen = draw_index(probabilities, seed_from_id(f"realdata-{seed}-{workload.ids[row]}"))
        score = float(workload.scores[row, chosen])
        reward = score - lam * float(workload.costs[row, chosen])
        policy.learn(maker.event(features, chosen, probabilities[chosen], score, reward))
        choices[row] = chosen
        if progress is not None:
            progress(step + 1)
    return choices
