"""One case per online component for the shared contract (test_online_learners.py): how to build
the learner with a seed, a few typed events and queries, an event and a query with a feature it
never saw and with one missing, how to reorder an input's names, and what a valid answer is."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import numpy as np

from learners.bandit.action_lines import ActionLines
from learners.bandit.settings import BanditSettings, Exploration
from learners.bandit.vw_bandit import BanditEvent, BanditQuery, VWBandit
from learners.catalog import Action, Catalog, ModelSpec, TemplateSpec
from learners.constant_features import ConstantFeatures, ConstantQuery
from learners.drift import BanditDriftSettings, DriftAlarm, DriftMonitor, DriftObservation
from learners.features import ContextRecord, Namespaces
from learners.history import HistoryFeatures, HistoryQuery, HistoryStats, OutcomeFacts
from learners.online_models import OnlineOutcomeModels, OutcomeEstimates, RiverOutcome, RiverQuery
from learners.online_stats import ActionPrediction, ActionQuery, OutcomeObservation, OutcomeStats
from learners.protocol import OnlineLearner
from learners.scaling import FeatureScaler
from learners.stacking import FloatArray, StackedOutcome, Stacker

Learner = OnlineLearner[Any, Any, Any]


@dataclass(frozen=True)
class LearnerCase:
    """What the contract needs to exercise one component. ``unseen`` and ``missing`` are None
    where inputs have no feature names (fixed-width arrays); ``reorder`` is None where inputs
    hold no mapping or list of names whose order could matter."""

    name: str
    build: Callable[[int], Learner]
    events: Callable[[], list[Any]]
    queries: Callable[[], list[Any]]
    valid: Callable[[Any], bool]
    unseen: Callable[[], tuple[Any, Any]] | None = None
    missing: Callable[[], tuple[Any, Any]] | None = None
    reorder_event: Callable[[Any], Any] | None = None
    reorder_query: Callable[[Any], Any] | None = None

    def __str__(self) -> str:
        return self.name


def reversed_mapping(value: Any) -> Any:
    """``value`` with every dict (at any depth) in reverse insertion order."""
    if isinstance(value, dict):
        return {key: reversed_mapping(value[key]) for key in reversed(list(value))}
    return value


# --- VW bandit --------------------------------------------------------------------------------

CATALOG = Catalog(
    models=[ModelSpec(name=f"model{i}", input_price_per_mtok=i, output_price_per_mtok=i,
                      typical_latency_s=1 + i) for i in range(3)],
    templates=[TemplateSpec(name="plain"), TemplateSpec(name="steps")],
    temperatures=[0.2, 0.8],
)
LINES = ActionLines(CATALOG)
ALL = list(range(len(CATALOG.actions)))


def _namespaces(rng: random.Random) -> Namespaces:
    kind = rng.choice(["backend", "frontend", "data"])
    return {
        "task": {f"type={kind}": 1.0, "complexity": round(rng.uniform(0.1, 1.0), 3)},
        "free": {"size": round(rng.gauss(3.0, 1.0), 3), f"colour={rng.choice('rgb')}": 1.0,
                 "weight": round(rng.uniform(-2.0, 2.0), 3)},
        "caller": {f"agent={rng.choice(['impl', 'review'])}": 1.0},
    }


def _bandit_events() -> list[BanditEvent]:
    rng = random.Random(0)
    events = []
    for _ in range(60):
        allowed = sorted(rng.sample(ALL, rng.randint(2, len(ALL))))
        events.append(BanditEvent(
            namespaces=_namespaces(rng), actions=LINES, allowed=allowed,
            chosen_position=rng.randrange(len(allowed)), reward=rng.choice([0.0, 0.5, 1.0]),
            propensity=round(rng.uniform(0.1, 1.0), 3)))
    return events


def _bandit_queries() -> list[BanditQuery]:
    rng = random.Random(1)
    return [BanditQuery(namespaces=_namespaces(rng), actions=LINES, allowed=allowed)
            for allowed in (ALL, [0, 3, 5], [7, 1], ALL[::-1])]


def _bandit_unseen() -> tuple[BanditEvent, BanditQuery]:
    namespaces = {"task": {"type=never-seen": 1.0, "complexity": 0.5},
                  "free": {"brand_new": 4.0}, "caller": {"agent=new": 1.0}}
    return (BanditEvent(namespaces=namespaces, actions=LINES, allowed=ALL, chosen_position=2,
                        reward=1.0, propensity=0.5),
            BanditQuery(namespaces=namespaces, actions=LINES, allowed=ALL))


def _bandit_missing() -> tuple[BanditEvent, BanditQuery]:
    namespaces: Namespaces = {"task": {"type=backend": 1.0}}  # no free or caller features
    return (BanditEvent(namespaces=namespaces, actions=LINES, allowed=[1, 4], chosen_position=0,
                        reward=0.0, propensity=0.25),
            BanditQuery(namespaces=namespaces, actions=LINES, allowed=[1, 4]))


def _distribution(answer: list[float]) -> bool:
    return (all(p > 0.0 and math.isfinite(p) for p in answer)
            and math.isclose(math.fsum(answer), 1.0, abs_tol=1e-9))


def _bandit_case(exploration: Exploration) -> LearnerCase:
    def build(seed: int) -> OnlineLearner[BanditEvent, BanditQuery, list[float]]:
        return VWBandit(settings=BanditSettings(exploration=exploration, seed=seed))

    return LearnerCase(
        name=f"vw-bandit-{exploration}", build=build, events=_bandit_events,
        queries=_bandit_queries, valid=_distribution, unseen=_bandit_unseen,
        missing=_bandit_missing,
        reorder_event=lambda e: msgspec.structs.replace(
            e, namespaces=reversed_mapping(e.namespaces)),
        reorder_query=lambda q: msgspec.structs.replace(
            q, namespaces=reversed_mapping(q.namespaces)))


# --- River outcome models ---------------------------------------------------------------------

def _record(rng: random.Random, **changes: Any) -> ContextRecord:
    record = ContextRecord(
        task_type=rng.choice(["backend", "frontend"]), language=rng.choice(["python", "go"]),
        framework=None, agent=rng.choice(["impl", None]), objective="balanced",
        description_words=rng.randint(5, 80), requirements=rng.randint(0, 6),
        technical_terms=rng.randint(0, 9), complexity=round(rng.uniform(1.0, 9.0), 2),
        rag_examples=rng.choice([None, 3]), rag_similarity=rng.choice([None, 0.7]),
        rag_quality=None, hour=rng.randrange(24), weekday=rng.randrange(7))
    return msgspec.structs.replace(record, **changes)


def _river_events() -> list[RiverOutcome]:
    rng = random.Random(2)
    events = []
    for _ in range(80):
        approved = rng.random() < 0.6
        events.append(RiverOutcome(record=_record(rng), action=rng.choice(CATALOG.actions),
                                   reward=0.9 if approved else 0.1, approved=approved))
    return events


def _river_queries() -> list[RiverQuery]:
    rng = random.Random(3)
    return [RiverQuery(record=_record(rng), actions=list(CATALOG.actions)) for _ in range(4)]


def _river_unseen() -> tuple[RiverOutcome, RiverQuery]:
    record = _record(random.Random(4), task_type="never-seen", language="cobol",
                     agent="new-agent", framework="new-framework")
    action = CATALOG.actions[3]
    return (RiverOutcome(record=record, action=action, reward=1.0, approved=True),
            RiverQuery(record=record, actions=[action]))


def _river_missing() -> tuple[RiverOutcome, RiverQuery]:
    record = _record(random.Random(5), agent=None, framework=None, rag_examples=None,
                     rag_similarity=None, rag_quality=None)
    return (RiverOutcome(record=record, action=CATALOG.actions[0], reward=0.0, approved=False),
            RiverQuery(record=record, actions=list(CATALOG.actions)))


def _estimates(answer: OutcomeEstimates) -> bool:
    return len(answer.rewards) == len(answer.success) > 0 and all(
        0.0 <= v <= 1.0 for v in (*answer.rewards, *answer.success))


def _build_river(seed: int) -> OnlineLearner[RiverOutcome, RiverQuery, OutcomeEstimates]:
    return OnlineOutcomeModels(buckets=16)


# --- Stacker ----------------------------------------------------------------------------------

def _stack_events() -> list[StackedOutcome]:
    rng = np.random.default_rng(6)
    events = []
    for _ in range(50):
        columns = np.array([1.0, *rng.uniform(0.0, 1.0, 2)])
        events.append(StackedOutcome(columns=columns,
                                     reward=float(0.2 * columns[1] + 0.7 * columns[2])))
    return events


def _stack_queries() -> list[FloatArray]:
    return [np.array([[1.0, 0.2, 0.9], [1.0, 0.8, 0.1]]), np.array([[1.0, 0.5, 0.5]])]


def _stacked(answer: FloatArray) -> bool:
    return bool(np.all(np.isfinite(answer)))


def _build_stacker(seed: int) -> OnlineLearner[StackedOutcome, FloatArray, FloatArray]:
    return Stacker(prior=(0.0, 1.0, 0.0), strength=5.0, decay=0.99)


# --- Outcome statistics -----------------------------------------------------------------------

def _stats_events() -> list[OutcomeObservation]:
    rng = random.Random(7)
    events = []
    for _ in range(60):
        action = rng.choice(CATALOG.actions)
        events.append(OutcomeObservation(
            model=action.model.name, action_id=action.id, success=rng.choice([0.0, 0.5, 1.0]),
            quality=rng.choice([None, round(rng.uniform(0, 10), 1)]),
            time_s=rng.choice([None, round(rng.uniform(1, 30), 1)]), prior_time_s=10.0))
    return events


def _stats_queries() -> list[ActionQuery]:
    return [ActionQuery(model=a.model.name, action_id=a.id, prior_time_s=8.0)
            for a in CATALOG.actions[:4]]


def _stats_unseen() -> tuple[OutcomeObservation, ActionQuery]:
    return (OutcomeObservation(model="never-seen", action_id="never-seen|0|x", success=1.0,
                               quality=9.0, time_s=3.0, prior_time_s=2.0),
            ActionQuery(model="never-seen", action_id="never-seen|0|x", prior_time_s=2.0))


def _stats_missing() -> tuple[OutcomeObservation, ActionQuery]:
    action = CATALOG.actions[1]
    return (OutcomeObservation(model=action.model.name, action_id=action.id, success=0.0,
                               quality=None, time_s=None, prior_time_s=0.0),
            ActionQuery(model=action.model.name, action_id=action.id, prior_time_s=0.0))


def _prediction(answer: ActionPrediction) -> bool:
    low, high = answer.time_interval_s
    return (0.0 <= answer.success_probability <= 1.0 and 0.0 <= answer.quality <= 10.0
            and low <= answer.time_s <= high)


def _build_stats(seed: int) -> OnlineLearner[OutcomeObservation, ActionQuery, ActionPrediction]:
    return OutcomeStats()


# --- History aggregates -----------------------------------------------------------------------

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MODELS = tuple(m.name for m in CATALOG.models)
TEMPLATES = tuple(t.name for t in CATALOG.templates)


def _facts(rng: random.Random, at: datetime, **changes: Any) -> OutcomeFacts:
    action: Action = rng.choice(CATALOG.actions)
    facts = OutcomeFacts(
        tenant_id=rng.choice(["acme", "globex"]), decided_at=at,
        task_type=rng.choice(["backend", "frontend"]), language=rng.choice(["python", "go"]),
        project_id=rng.choice(["billing", "search", None]), agent=rng.choice(["impl", None]),
        model=action.model.name, template=action.template.name, approved=rng.random() < 0.6,
        quality=rng.choice([None, 7.5]))
    return msgspec.structs.replace(facts, **changes)


def _history_events() -> list[OutcomeFacts]:
    rng = random.Random(8)
    return [_facts(rng, T0 + timedelta(hours=i)) for i in range(80)]


def _history_queries() -> list[HistoryQuery]:
    at = T0 + timedelta(days=5)
    return [HistoryQuery(tenant_id=tenant, task_type="backend", language="python",
                         project_id=project, agent="impl", models=MODELS, templates=TEMPLATES,
                         at=at)
            for tenant in ("acme", "globex") for project in ("billing", "search")]


def _history_unseen() -> tuple[OutcomeFacts, HistoryQuery]:
    facts = _facts(random.Random(9), T0 + timedelta(days=6), tenant_id="initech",
                   task_type="never-seen", language="cobol", project_id="new-project",
                   agent="new-agent", model="new-model", template="new-template")
    return facts, HistoryQuery(
        tenant_id="initech", task_type="never-seen", language="cobol", project_id="new-project",
        agent="new-agent", models=(*MODELS, "new-model"), templates=("new-template",),
        at=T0 + timedelta(days=7))


def _history_missing() -> tuple[OutcomeFacts, HistoryQuery]:
    facts = _facts(random.Random(10), T0 + timedelta(days=6), project_id=None, agent=None,
                   quality=None)
    return facts, HistoryQuery(tenant_id="acme", task_type="backend", language="python",
                               project_id=None, agent=None, models=(), templates=(),
                               at=T0 + timedelta(days=7))


def _history(answer: HistoryFeatures) -> bool:
    summaries = [answer.similar, answer.project, answer.agent, *answer.models.values(),
                 *answer.templates.values()]
    return all((s.n == 0) == (s.success is None) and (s.success is None or 0 <= s.success <= 1)
               for s in summaries)


def _build_history(seed: int) -> OnlineLearner[OutcomeFacts, HistoryQuery, HistoryFeatures]:
    return HistoryStats(max_keys=6)


# --- Drift monitor ----------------------------------------------------------------------------

def _drift_events() -> list[DriftObservation]:
    rng = random.Random(11)
    events = []
    for i in range(2400):  # model0 collapses after 1,500 outcomes: its detectors fire
        model = "model0" if i % 2 == 0 else "model1"
        rate = 0.2 if model == "model0" and i > 1500 else 0.8
        events.append(DriftObservation(model=model, success=float(rng.random() < rate),
                                       predicted=None if i < 10 else 0.8))
    return events


def _drift_unseen() -> tuple[DriftObservation, str]:
    return DriftObservation(model="never-seen", success=1.0, predicted=0.5), "never-seen"


def _drift_missing() -> tuple[DriftObservation, str]:
    return DriftObservation(model="model1", success=0.0, predicted=None), "model1"


def _alarms(answer: list[DriftAlarm]) -> bool:
    return all(a.before > a.after and a.remaining > 0 for a in answer)


def _build_drift(seed: int) -> OnlineLearner[DriftObservation, str, list[DriftAlarm]]:
    return DriftMonitor(BanditDriftSettings(hold=2000))


# --- Feature scaler ---------------------------------------------------------------------------

def _scaler_events() -> list[Namespaces]:
    rng = random.Random(12)
    events = []
    for i in range(50):
        free = {f"f{rng.randrange(8)}": round(rng.gauss(10.0, 3.0), 3) for _ in range(3)}
        free[f"colour={rng.choice('rgb')}"] = 1.0
        events.append({"free": free, "task": {"type=backend": 1.0, "n": float(i)}})
    return events


def _scaler_queries() -> list[Namespaces]:
    return [{"free": {"f1": 9.0, "f7": 12.0, "colour=r": 1.0}, "task": {"n": 3.0}},
            {"free": {f"f{i}": float(i) for i in range(8)}}, {"task": {"n": 1.0}}]


def _scaler_unseen() -> tuple[Namespaces, Namespaces]:
    features = {"free": {"brand_new": 4.0, "f1": 2.0}, "new_namespace": {"x": 1.0}}
    return features, features


def _scaler_missing() -> tuple[Namespaces, Namespaces]:
    return {"task": {"n": 1.0}}, {"free": {}}


def _scaled(answer: Namespaces) -> bool:
    return all(math.isfinite(v) for features in answer.values() for v in features.values())


def _build_scaler(seed: int) -> OnlineLearner[Namespaces, Namespaces, Namespaces]:
    return FeatureScaler(max_features=5)  # fewer than the events' names: some are forgotten


# --- Constant features -------------------------------------------------------------------------

def _constant_events() -> list[Namespaces]:
    rng = random.Random(13)
    return [{"task": {"type=classify": 1.0, "complexity": 0.2},
             "free": {"x": float(rng.randrange(3)), f"colour={rng.choice('rg')}": 1.0}}
            for _ in range(20)]


def _constant_queries() -> list[ConstantQuery]:
    raw = {"task": {"type=classify": 1.0, "complexity": 0.2}, "free": {"x": 1.0, "colour=r": 1.0}}
    scaled = {"task": raw["task"], "free": {"x": -0.3, "colour=r": 1.0}}
    return [ConstantQuery(raw, raw), ConstantQuery(raw, scaled),
            ConstantQuery({"task": {"complexity": 0.9}}, {"task": {"complexity": 0.9}})]


def _constant_unseen() -> tuple[Namespaces, ConstantQuery]:
    features = {"task": {"type=classify": 1.0}, "new_namespace": {"brand_new": 4.0}}
    return features, ConstantQuery(features, features)


def _constant_missing() -> tuple[Namespaces, ConstantQuery]:
    return {"free": {"x": 2.0}}, ConstantQuery({}, {})


def _namespaces_answer(answer: Namespaces) -> bool:
    return all(isinstance(features, dict) for features in answer.values())


def _build_constant(seed: int) -> OnlineLearner[Namespaces, ConstantQuery, Namespaces]:
    return ConstantFeatures()


CASES = [
    _bandit_case("squarecb"),
    _bandit_case("epsilon"),
    LearnerCase(name="river-outcome-models", build=_build_river, events=_river_events,
                queries=_river_queries, valid=_estimates, unseen=_river_unseen,
                missing=_river_missing),
    LearnerCase(name="stacker", build=_build_stacker, events=_stack_events,
                queries=_stack_queries, valid=_stacked),
    LearnerCase(name="outcome-stats", build=_build_stats, events=_stats_events,
                queries=_stats_queries, valid=_prediction, unseen=_stats_unseen,
                missing=_stats_missing),
    LearnerCase(name="history", build=_build_history, events=_history_events,
                queries=_history_queries, valid=_history, unseen=_history_unseen,
                missing=_history_missing,
                reorder_query=lambda q: msgspec.structs.replace(
                    q, models=q.models[::-1], templates=q.templates[::-1])),
    LearnerCase(name="drift-monitor", build=_build_drift, events=_drift_events,
                queries=lambda: ["model0", "model1"], valid=_alarms, unseen=_drift_unseen,
                missing=_drift_missing),
    LearnerCase(name="feature-scaler", build=_build_scaler, events=_scaler_events,
                queries=_scaler_queries, valid=_scaled, unseen=_scaler_unseen,
                missing=_scaler_missing, reorder_event=reversed_mapping,
                reorder_query=reversed_mapping),
    LearnerCase(name="constant-features", build=_build_constant, events=_constant_events,
                queries=_constant_queries, valid=_namespaces_answer, unseen=_constant_unseen,
                missing=_constant_missing, reorder_event=reversed_mapping,
                reorder_query=lambda q: ConstantQuery(reversed_mapping(q.raw),
                                                      reversed_mapping(q.seen))),
]
