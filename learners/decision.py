"""The decision core: how a request is decided and how its outcome is learned.

The service (``POST /v1/route`` and ``/v1/feedback``), replay and every benchmark call these
functions (DESIGN.md rule 9), so a benchmark measures the served code path:

- :func:`describe` turns a request's context into the logged features, context record and
  history, and records the decision in the policy's history (project age);
- :func:`choose` asks the policy for a probability over the allowed actions and draws one with
  a generator seeded from the decision id (DESIGN.md rule 4);
- :func:`decide` is both, plus what is logged with the decision (:class:`LoggedDecision`);
- :func:`learn_event` is the one place that joins a logged decision and its outcome into the
  :class:`~learners.policy.LearnEvent` the learners fold in (DESIGN.md rule 3: the features and
  propensity logged at decision time, never recomputed).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from learners.bandit.sampling import draw_index, seed_from_id
from learners.catalog import ACTION_SEPARATOR, Catalog
from learners.context import DecisionContext
from learners.estimates import estimate_action_cost
from learners.features import ContextFeatures, ContextRecord, describe_context
from learners.history import HistoryFeatures, HistoryQuery, OutcomeFacts
from learners.policy import LearnEvent, OnlinePolicy
from learners.reward import Verdict


class StoredFeatures(msgspec.Struct, frozen=True):
    """What is logged of a decision's context (the event log's ``features`` column): context
    features, the chosen action's time prior, and the batch models' inputs (context record and
    the history known at the decision)."""

    namespaces: dict[str, dict[str, float]]
    complexity: float
    prior_time_s: float
    record: ContextRecord | None = None
    history: HistoryFeatures | None = None

    def context_features(self) -> ContextFeatures:
        return ContextFeatures(namespaces=self.namespaces, complexity=self.complexity)


class Described(msgspec.Struct, frozen=True):
    """A request's context as the learners see it at decision time."""

    features: ContextFeatures
    record: ContextRecord
    history: HistoryFeatures
    decided_at: datetime
    tenant_id: str
    project_id: str | None


class Choice(msgspec.Struct, frozen=True):
    """A probability over the allowed actions (catalog indices) and the drawn position."""

    allowed: list[int]
    probabilities: list[float]
    position: int

    @property
    def action(self) -> int:
        """The chosen catalog index."""
        return self.allowed[self.position]

    @property
    def propensity(self) -> float:
        return self.probabilities[self.position]

    @property
    def greedy(self) -> int:
        """Position of the first most probable action."""
        return self.probabilities.index(max(self.probabilities))

    @property
    def explored(self) -> bool:
        return self.position != self.greedy


class LoggedDecision(msgspec.Struct, frozen=True):
    """What the event log keeps of a decision that learning needs."""

    tenant_id: str
    decided_at: datetime
    project_id: str | None
    task_type: str | None
    catalog_fingerprint: str
    features: StoredFeatures
    allowed: list[int]
    chosen_position: int
    chosen_action: str  # catalog action id
    propensity: float


class LoggedOutcome(msgspec.Struct, frozen=True):
    """What the event log keeps of an outcome that learning needs."""

    verdict: Verdict
    reward: float
    quality: float | None = None
    generation_time_s: float | None = None
    cost_usd: float | None = None


class Decision(msgspec.Struct, frozen=True):
    """:func:`decide`'s answer: the described context, the choice and what is logged."""

    described: Described
    choice: Choice
    logged: LoggedDecision

    @property
    def action(self) -> int:
        return self.choice.action

    @property
    def propensity(self) -> float:
        return self.choice.propensity


def describe(policy: OnlinePolicy, catalog: Catalog, context: DecisionContext, *,
             tenant_id: str, decided_at: datetime) -> Described:
    """Features, context record and history of one request, decided at ``decided_at``; the
    decision is recorded in ``policy``'s history (its project's first decision)."""
    features, record = describe_context(context, decided_at)
    project_id = context.caller.project_id
    history = policy.known_history(HistoryQuery(
        tenant_id=tenant_id,
        task_type=record.task_type,
        language=record.language,
        project_id=project_id,
        agent=record.agent,
        models=catalog.model_order,
        templates=catalog.template_order,
        at=decided_at,
    ))
    policy.observe_decision(tenant_id, project_id, decided_at)
    return Described(features=features, record=record, history=history, decided_at=decided_at,
                     tenant_id=tenant_id, project_id=project_id)


def choose(policy: OnlinePolicy, catalog: Catalog, described: Described, allowed: list[int],
           *, decision_id: str) -> Choice:
    """The policy's probabilities over ``allowed`` and the position drawn with a generator
    seeded from ``decision_id``."""
    probabilities = policy.probabilities(described.features, catalog, allowed, described.record)
    position = draw_index(probabilities, seed_from_id(decision_id))
    return Choice(allowed=allowed, probabilities=probabilities, position=position)


def logged_decision(described: Described, choice: Choice, catalog: Catalog, *,
                    prior_time_s: float) -> LoggedDecision:
    """What is logged of a decision; ``prior_time_s``: the chosen action's time estimate
    (:func:`learners.estimates.estimate_action_cost`)."""
    action = catalog.actions[choice.action]
    return LoggedDecision(
        tenant_id=described.tenant_id,
        decided_at=described.decided_at,
        project_id=described.project_id,
        task_type=described.record.task_type,
        catalog_fingerprint=catalog.fingerprint,
        features=StoredFeatures(
            namespaces=described.features.namespaces,
            complexity=described.features.complexity,
            prior_time_s=prior_time_s,
            record=described.record,
            history=described.history,
        ),
        allowed=choice.allowed,
        chosen_position=choice.position,
        chosen_action=action.id,
        propensity=choice.propensity,
    )


def decide(policy: OnlinePolicy, catalog: Catalog, context: DecisionContext, *,
           tenant_id: str, decided_at: datetime, allowed: list[int] | None = None,
           decision_id: str) -> Decision:
    """:func:`describe` and :func:`choose` for one request. ``allowed`` defaults to every
    action whose template allows the task's language (the service narrows it further by the
    request's constraints and budgets: router/services/allowed.py)."""
    described = describe(policy, catalog, context, tenant_id=tenant_id, decided_at=decided_at)
    if allowed is None:
        allowed = list(catalog.indices_for_language(context.task.language))
    choice = choose(policy, catalog, described, allowed, decision_id=decision_id)
    rag = context.caller.rag
    estimate = estimate_action_cost(catalog.actions[choice.action], context.task,
                                    described.features.complexity, rag.examples if rag else 0)
    return Decision(described=described, choice=choice,
                    logged=logged_decision(described, choice, catalog,
                                           prior_time_s=estimate.latency_s))


def outcome_facts(decision: LoggedDecision, outcome: LoggedOutcome) -> OutcomeFacts | None:
    """What an outcome adds to the historical features (None for decisions logged before
    context records existed)."""
    record = decision.features.record
    if record is None:
        return None
    model, _, rest = decision.chosen_action.partition(ACTION_SEPARATOR)
    template = rest.partition(ACTION_SEPARATOR)[2]
    return OutcomeFacts(
        tenant_id=decision.tenant_id,
        decided_at=decision.decided_at,
        task_type=record.task_type,
        language=record.language,
        project_id=decision.project_id,
        agent=record.agent,
        model=model,
        template=template,
        approved=outcome.verdict is Verdict.APPROVED,
        quality=outcome.quality,
    )


def learn_event(decision: LoggedDecision, outcome: LoggedOutcome, *, seq: int) -> LearnEvent:
    """The learn event of outcome number ``seq``: the decision's logged features and
    propensity joined with the outcome."""
    features = decision.features
    return LearnEvent(
        seq=seq,
        catalog_fingerprint=decision.catalog_fingerprint,
        features=features.context_features(),
        allowed=decision.allowed,
        chosen_position=decision.chosen_position,
        propensity=decision.propensity,
        reward=outcome.reward,
        verdict=outcome.verdict,
        quality=outcome.quality,
        generation_time_s=outcome.generation_time_s,
        prior_time_s=features.prior_time_s,
        facts=outcome_facts(decision, outcome),
        record=features.record,
        tenant_id=decision.tenant_id,
        task_type=decision.task_type,
        cost_usd=outcome.cost_usd,
    )
