"""Stand-in for :mod:`learners.decision` (the one decision core, issue 17 item 1) until it lands.

The names and signatures are the ones the core will have; the bodies follow what
:meth:`router.services.routing.RoutingService.route` and ``feedback`` do today: features
described once, the tenant's history told of the decision, probabilities over the allowed
actions, a draw seeded from the decision id, and a learn event built from what was logged.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from learners.bandit.sampling import draw_index, seed_from_id
from learners.catalog import Catalog
from learners.context import DecisionContext
from learners.estimates import estimate_action_cost
from learners.features import ContextFeatures, ContextRecord, describe_context
from learners.history import OutcomeFacts
from learners.policy import LearnEvent, OnlinePolicy
from learners.reward import Verdict


class LoggedDecision(msgspec.Struct, frozen=True):
    """What the event log keeps of one decision: all a later outcome needs to be learned."""

    decision_id: str
    tenant_id: str
    decided_at: datetime
    catalog_fingerprint: str
    features: ContextFeatures
    record: ContextRecord
    project_id: str | None
    allowed: list[int]
    probabilities: list[float]
    chosen_position: int
    prior_time_s: float
    model: str
    template: str

    @property
    def propensity(self) -> float:
        return self.probabilities[self.chosen_position]


class Decision(msgspec.Struct, frozen=True):
    """The answer of :func:`decide`: the chosen catalog index, its probability, the log."""

    action: int
    propensity: float
    logged: LoggedDecision


class LoggedOutcome(msgspec.Struct, frozen=True):
    """What the caller reported about a decision."""

    verdict: Verdict
    reward: float
    quality: float | None = None
    generation_time_s: float | None = None
    cost_usd: float | None = None


def decide(policy: OnlinePolicy, catalog: Catalog, context: DecisionContext, *, tenant_id: str,
           decided_at: datetime, allowed: list[int], decision_id: str) -> Decision:
    """Choose an action among ``allowed`` for ``context`` as ``POST /v1/route`` does."""
    features, record = describe_context(context, decided_at)
    project_id = context.caller.project_id
    policy.history.observe_decision(tenant_id, project_id, decided_at)
    probabilities = policy.probabilities(features, catalog, allowed, record)
    position = draw_index(probabilities, seed_from_id(decision_id))
    action = catalog.actions[allowed[position]]
    rag = context.caller.rag
    estimate = estimate_action_cost(action, context.task, features.complexity,
                                    rag.examples if rag is not None else 0)
    logged = LoggedDecision(
        decision_id=decision_id, tenant_id=tenant_id, decided_at=decided_at,
        catalog_fingerprint=catalog.fingerprint, features=features, record=record,
        project_id=project_id, allowed=list(allowed), probabilities=probabilities,
        chosen_position=position, prior_time_s=estimate.latency_s,
        model=action.model.name, template=action.template.name)
    return Decision(action=action.index, propensity=probabilities[position], logged=logged)


def learn_event(logged: LoggedDecision, outcome: LoggedOutcome, *, seq: int) -> LearnEvent:
    """The learn event of ``outcome`` with the features and propensity logged at decision."""
    record = logged.record
    return LearnEvent(
        seq=seq, catalog_fingerprint=logged.catalog_fingerprint, features=logged.features,
        allowed=logged.allowed, chosen_position=logged.chosen_position,
        propensity=logged.propensity, reward=outcome.reward, verdict=outcome.verdict,
        quality=outcome.quality, generation_time_s=outcome.generation_time_s,
        prior_time_s=logged.prior_time_s, record=record, tenant_id=logged.tenant_id,
        task_type=record.task_type, cost_usd=outcome.cost_usd,
        facts=OutcomeFacts(
            tenant_id=logged.tenant_id, decided_at=logged.decided_at,
            task_type=record.task_type, language=record.language,
            project_id=logged.project_id, agent=record.agent, model=logged.model,
            template=logged.template, approved=outcome.verdict is Verdict.APPROVED,
            quality=outcome.quality))
