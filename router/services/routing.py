"""Route decisions and feedback: the service layer between controllers and learners/storage."""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime

import msgspec

from learners.catalog import ACTION_SEPARATOR, Catalog
from learners.context import DecisionContext
from learners.decision import LoggedOutcome, choose, describe, learn_event, logged_decision
from learners.estimates import estimate_action_cost
from learners.policy import POLICY_NAME
from learners.reward import Outcome, RewardProfile, Verdict, compute_reward
from router.errors import DecisionNotFoundError, RequestConflictError, UnknownProfileError
from router.logs import bind_decision
from router.metrics import ServiceMetrics
from router.schemas import (
    Alternative,
    DecisionView,
    FeedbackRequest,
    FeedbackResponse,
    OutcomeView,
    PolicyInfo,
    RouteRequest,
    RouteResponse,
)
from router.services.allowed import allowed_actions
from router.services.batch import BatchView
from router.services.code_metrics import CodeMetricsRunner
from router.services.conservative import conservative_actions
from router.services.learning import LearnerService
from router.services.models import ModelService
from router.services.predictions import (
    assess_batch_risk,
    assess_risk,
    build_predictions,
)
from router.services.tenant_stats import DecisionCounter
from router.settings import BatchSettings
from router.storage.batching import DecisionWriter
from router.storage.repository import (
    DecisionRecord,
    DuplicateKeyError,
    EventLog,
)
from router.storage.rows import DecisionRow, ModelVersions, OutcomeRow

ALTERNATIVES = 3


def decision_id_for(tenant_id: str, request_id: str | None) -> str:
    """Deterministic in (tenant, request_id) when the caller sends one (DESIGN.md rule 4)."""
    if request_id is None:
        # 128 random bits as 32 hex digits, like uuid4().hex without building a UUID (2.3 us
        # against 0.4 us per route).
        return os.urandom(16).hex()
    return hashlib.sha256(f"{tenant_id}\x00{request_id}".encode()).hexdigest()[:32]


class RoutingService:
    def __init__(
        self,
        *,
        catalog: Catalog,
        profiles: dict[str, RewardProfile],
        default_profile: str,
        learner: LearnerService,
        log: EventLog,
        models: ModelService,
        batch_settings: BatchSettings,
        code_metrics: CodeMetricsRunner,
        decisions: DecisionCounter,
        metrics: ServiceMetrics,
    ) -> None:
        self.code_metrics = code_metrics
        self.metrics = metrics
        self.models = models
        self.decisions = decisions
        self.batch_settings = batch_settings
        self._model_names = tuple(m.name for m in catalog.models)
        self._template_names = tuple(t.name for t in catalog.templates)
        self.writer = DecisionWriter(log)
        self.catalog = catalog
        self.profiles = profiles
        self.default_profile = default_profile
        self.learner = learner
        self.log = log

    async def route(self, tenant_id: str, request: RouteRequest) -> RouteResponse:
        request_json = msgspec.json.encode(request)
        request_hash = hashlib.sha256(request_json).hexdigest()
        decision_id = decision_id_for(tenant_id, request.request_id)
        bind_decision(decision_id, tenant_id)
        if request.request_id is not None:
            existing = await self.log.get_decision(tenant_id, decision_id)
            if existing is not None:
                return self._replayed(existing, request_hash)
        objective = request.objective or self.default_profile
        if objective not in self.profiles:
            known = ", ".join(sorted(self.profiles))
            raise UnknownProfileError(
                f"unknown objective {objective!r}; known: {known}", field="objective"
            )
        context = DecisionContext(
            task=request.task,
            caller=request.context,
            features=dict(request.features),
            objective=objective,
        )
        # The caller's own learner state (DESIGN.md rule 7), or the shared one when configured.
        policy = self.learner.policies.for_tenant(tenant_id)
        described = describe(policy, self.catalog, context, tenant_id=tenant_id,
                             decided_at=datetime.now(UTC))
        features, record = described.features, described.record
        rag_examples = request.context.rag.examples if request.context.rag else 0
        allowed = allowed_actions(
            self.catalog, request.task, request.constraints, features.complexity, rag_examples
        )
        choice = choose(policy, self.catalog, described, allowed, decision_id=decision_id)
        loaded = self.models.current
        batch: BatchView | None = None
        if loaded is not None:
            probabilities = choice.probabilities
            greedy = max(range(len(probabilities)), key=probabilities.__getitem__)
            batch = BatchView.compute(loaded, record, described.history, self.catalog, allowed,
                                      needed=(greedy, choice.position))
            safer = conservative_actions(batch, self.catalog, allowed, greedy,
                                         self.batch_settings)
            if safer is not None:
                allowed, batch = safer, batch.subset(allowed, safer)
                choice = choose(policy, self.catalog, described, allowed,
                                decision_id=decision_id)
        probabilities, position = choice.probabilities, choice.position
        explored = choice.explored
        action = self.catalog.actions[choice.action]
        estimate = estimate_action_cost(action, request.task, features.complexity, rag_examples)
        logged = logged_decision(described, choice, self.catalog, prior_time_s=estimate.latency_s)
        if batch is None:
            online = policy.predict(self.catalog, action.index, estimate.latency_s, record)
            predictions = build_predictions(online, estimate, features.complexity)
            risk = assess_risk(
                predictions,
                online.observations,
                action,
                request.constraints.max_cost_usd,
                explored,
                probabilities[position],
            )
        else:
            predictions = batch.predictions(position, estimate)
            # Served P(approved): the mean of the batch model's and River's once River has
            # learned enough (it predicted better than either alone: README "Which prediction
            # of P(approved) to serve"). Risk factors still explain the batch model.
            river = policy.river_success(record, self.catalog, action.index)
            if river is not None:
                predictions = msgspec.structs.replace(
                    predictions,
                    success_probability=round((predictions.success_probability + river) / 2, 4),
                    source=f"{predictions.source}+river",
                )
            risk = assess_batch_risk(
                predictions,
                batch.contributions(position),
                action,
                request.constraints.max_cost_usd,
                explored,
                probabilities[position],
                batch.conservative_reason,
            )
        policy_version = policy.version
        response = RouteResponse(
            decision_id=decision_id,
            model=action.model.name,
            temperature=action.temperature,
            template=action.template.name,
            propensity=probabilities[position],
            explored=explored,
            policy=PolicyInfo(name=POLICY_NAME, version=policy_version),
            predictions=predictions,
            risk=risk,
            alternatives=self._alternatives(allowed, probabilities, position),
        )
        row = DecisionRow(
            id=decision_id,
            tenant_id=tenant_id,
            request_id=request.request_id,
            request_hash=request_hash,
            created_at=described.decided_at,
            catalog_fingerprint=self.catalog.fingerprint,
            objective=objective,
            # JSON columns take what msgspec encodes: the request's JSON as it was hashed and
            # the records themselves, with no detour through dicts and lists.
            request=request_json,
            features=logged.features,
            project_id=described.project_id,
            task_type=record.task_type,
            language=record.language,
            model=action.model.name,
            allowed=allowed,
            probabilities=probabilities,
            chosen_action=action.id,
            chosen_position=position,
            propensity=probabilities[position],
            explored=explored,
            policy_name=POLICY_NAME,
            policy_version=policy_version,
            model_versions=ModelVersions(
                batch=None if loaded is None else loaded.version,
                online=policy_version,
                strategy=None if batch is None else batch.conservative_reason,
                template_ranking=None if batch is None else batch.template_ranking,
            ),
            learner_seq=self.learner.applied_seq,
            # Candidates decide on the same allowed actions and features; never served.
            shadow_probabilities=self.learner.shadows.decide(tenant_id, features,
                                                             self.catalog, allowed, record),
            response=response,
        )
        try:
            await self.writer.insert(row)
        except DuplicateKeyError:
            # The same request_id raced with itself: the first decision stands.
            existing = await self.log.get_decision(tenant_id, decision_id)
            if existing is None:
                raise
            return self._replayed(existing, request_hash)
        self.decisions.add(tenant_id)
        self.metrics.count_decision(action.model.name, action.template.name)
        return response

    def _replayed(self, existing: DecisionRecord, request_hash: str) -> RouteResponse:
        if existing.request_hash != request_hash:
            raise RequestConflictError(
                "this request_id was already used with a different request body",
                field="request_id",
            )
        return msgspec.convert(existing.response, RouteResponse)

    def _alternatives(
        self, allowed: list[int], probabilities: list[float], chosen: int
    ) -> list[Alternative]:
        # The most probable first, ties in allowed order (a stable sort keeps it in reverse).
        order = sorted(range(len(allowed)), key=probabilities.__getitem__, reverse=True)
        result = []
        for i in order:
            if i == chosen:
                continue
            action = self.catalog.actions[allowed[i]]
            result.append(
                Alternative(
                    model=action.model.name,
                    temperature=action.temperature,
                    template=action.template.name,
                    probability=probabilities[i],
                )
            )
            if len(result) == ALTERNATIVES:
                break
        return result

    async def feedback(self, tenant_id: str, request: FeedbackRequest) -> FeedbackResponse:
        bind_decision(request.decision_id, tenant_id)
        decision = await self._decision_or_404(tenant_id, request.decision_id)
        if request.reward is not None:
            reward, source = request.reward, "explicit"
        else:
            profile = self.profiles.get(decision.objective) or self.profiles[self.default_profile]
            outcome = Outcome(
                verdict=request.outcome,
                quality=request.quality,
                generation_time_s=request.generation_time_s,
                cost_usd=request.cost_usd,
                regenerations=request.regenerations,
            )
            reward, source = compute_reward(outcome, profile), f"profile:{decision.objective}"
        received_at = datetime.now(UTC)
        row = OutcomeRow(
            decision_id=decision.id,
            tenant_id=tenant_id,
            created_at=received_at,
            verdict=request.outcome.value,
            quality=request.quality,
            generation_time_s=request.generation_time_s,
            cost_usd=request.cost_usd,
            tokens=request.tokens,
            regenerations=request.regenerations,
            code=request.code,
            reward=reward,
            reward_source=source,
            complexity=request.complexity,
        )
        logged = decision.logged()
        try:
            seq = await self.log.insert_outcome(row)
        except DuplicateKeyError:
            stored = await self.log.get_outcome(decision.id)
            if stored is None:
                raise
            return FeedbackResponse(
                decision_id=decision.id,
                reward=stored.reward,
                reward_source=stored.reward_source,
                duplicate=True,
                sequence=stored.seq,
                learned=self.learner.applied_seq >= stored.seq,
            )
        event = learn_event(
            logged,
            LoggedOutcome(
                verdict=request.outcome,
                reward=reward,
                quality=request.quality,
                generation_time_s=request.generation_time_s,
                cost_usd=request.cost_usd,
            ),
            seq=seq,
        )
        learned = await self.learner.apply(event)
        decided_at = decision.created_at
        if decided_at.tzinfo is None:  # SQLite hands back naive UTC datetimes
            decided_at = decided_at.replace(tzinfo=UTC)
        self.metrics.observe_outcome(
            decision.chosen_action.partition(ACTION_SEPARATOR)[0], reward,
            (received_at - decided_at).total_seconds(),
        )
        if request.code is not None:
            # Measured once the outcome is stored and learned: a duplicate never measures.
            record = logged.features.record
            language = record.language if record else "unknown"
            metrics = await self.code_metrics.measure(request.code, language)
            if metrics is not None:
                await self.log.set_code_metrics(decision.id, msgspec.to_builtins(metrics))
        return FeedbackResponse(
            decision_id=decision.id,
            reward=reward,
            reward_source=source,
            duplicate=False,
            sequence=seq,
            learned=learned,
        )

    async def _decision_or_404(self, tenant_id: str, decision_id: str) -> DecisionRecord:
        decision = await self.log.get_decision(tenant_id, decision_id)
        if decision is None:
            raise DecisionNotFoundError(
                f"no decision {decision_id!r} for this tenant", field="decision_id"
            )
        return decision

    async def describe(self, tenant_id: str, decision_id: str) -> DecisionView:
        bind_decision(decision_id, tenant_id)
        decision = await self._decision_or_404(tenant_id, decision_id)
        outcome = await self.log.get_outcome(decision_id)
        catalog = self.catalog
        if decision.catalog_fingerprint != catalog.fingerprint:
            catalog = (await self.log.load_catalogs())[decision.catalog_fingerprint]
        return DecisionView(
            decision_id=decision.id,
            created_at=decision.created_at.isoformat(),
            request_id=decision.request_id,
            objective=decision.objective,
            request=msgspec.convert(decision.request, RouteRequest),
            response=msgspec.convert(decision.response, RouteResponse),
            allowed_actions=[catalog.actions[i].id for i in decision.allowed],
            probabilities=decision.probabilities,
            outcome=None
            if outcome is None
            else OutcomeView(
                outcome=Verdict(outcome.verdict),
                reward=outcome.reward,
                reward_source=outcome.reward_source,
                sequence=outcome.seq,
                quality=outcome.quality,
                generation_time_s=outcome.generation_time_s,
                cost_usd=outcome.cost_usd,
                tokens=outcome.tokens,
                regenerations=outcome.regenerations,
            ),
        )
