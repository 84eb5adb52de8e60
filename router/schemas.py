"""HTTP bodies of API v1 (msgspec Structs); limits are part of the contract (README "Limits")."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from learners.catalog import Temperature
from learners.context import NO_NUL, CallerContext, Features, OptionalShort, Task
from learners.reward import Verdict

MAX_CODE_CHARS = 200_000
MAX_CONSTRAINT_ITEMS = 64

NonNegative = Annotated[float, Meta(ge=0.0, le=1e9)]
RequestId = Annotated[str, Meta(min_length=1, max_length=128, pattern=NO_NUL)]
DecisionId = Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)]
Probability = Annotated[float, Meta(ge=0.0, le=1.0)]


class Constraints(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Restrictions of one request; every listed name must exist in the catalog."""

    models: Annotated[list[OptionalShort], Meta(max_length=MAX_CONSTRAINT_ITEMS)] | None = None
    templates: Annotated[list[OptionalShort], Meta(max_length=MAX_CONSTRAINT_ITEMS)] | None = None
    temperatures: Annotated[list[Temperature], Meta(max_length=MAX_CONSTRAINT_ITEMS)] | None = None
    max_cost_usd: Annotated[float, Meta(gt=0.0, le=1e6)] | None = None
    max_latency_s: Annotated[float, Meta(gt=0.0, le=1e6)] | None = None


class RouteRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    task: Task
    request_id: RequestId | None = None
    context: CallerContext = CallerContext()
    features: Features = {}
    constraints: Constraints = Constraints()
    objective: Annotated[str, Meta(min_length=1, max_length=64, pattern=NO_NUL)] | None = None


class FieldError(msgspec.Struct, frozen=True):
    field: str
    reason: str


class Problem(msgspec.Struct, frozen=True):
    """Every error response (``application/problem+json``, RFC 9457; docs/api.md)."""

    type: str
    title: str
    status: int
    detail: str
    field: str | None = None  # the offending field as a JSON path, or "(body)", "content-type"
    errors: list[FieldError] | None = None  # every invalid field (422)


class PolicyInfo(msgspec.Struct, frozen=True):
    name: str
    version: str


class Predictions(msgspec.Struct, frozen=True):
    success_probability: float
    quality: float
    complexity: float
    time_s: float
    time_interval_s: tuple[float, float]
    cost_usd: float
    source: str


class Risk(msgspec.Struct, frozen=True):
    level: str
    factors: list[str]


class Alternative(msgspec.Struct, frozen=True):
    model: str
    temperature: float
    template: str
    probability: float


class RouteResponse(msgspec.Struct, frozen=True):
    decision_id: str
    model: str
    temperature: float
    template: str
    propensity: float
    explored: bool
    policy: PolicyInfo
    predictions: Predictions
    risk: Risk
    alternatives: list[Alternative]


class FeedbackRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    decision_id: DecisionId
    outcome: Verdict
    quality: Annotated[float, Meta(ge=0.0, le=10.0)] | None = None
    generation_time_s: NonNegative | None = None
    cost_usd: NonNegative | None = None
    tokens: Annotated[int, Meta(ge=0, le=100_000_000)] | None = None
    regenerations: Annotated[int, Meta(ge=0, le=1000)] = 0
    code: Annotated[str, Meta(max_length=MAX_CODE_CHARS, pattern=NO_NUL)] | None = None
    reward: Probability | None = None
    complexity: Annotated[float, Meta(ge=0.0, le=10.0)] | None = None


class FeedbackResponse(msgspec.Struct, frozen=True):
    decision_id: str
    reward: float
    reward_source: str
    duplicate: bool
    sequence: int
    learned: bool


class OutcomeView(msgspec.Struct, frozen=True):
    outcome: Verdict
    reward: float
    reward_source: str
    sequence: int
    quality: float | None
    generation_time_s: float | None
    cost_usd: float | None
    tokens: int | None
    regenerations: int


class DecisionView(msgspec.Struct, frozen=True):
    """A logged decision as ``GET /v1/decisions/{id}`` shows it."""

    decision_id: str
    created_at: str
    request_id: str | None
    objective: str
    request: RouteRequest
    response: RouteResponse
    allowed_actions: list[str]
    probabilities: list[float]
    outcome: OutcomeView | None


class Health(msgspec.Struct, frozen=True):
    status: str


class Readiness(msgspec.Struct, frozen=True):
    """Outcome counts are of rows in the log (null while the database is unavailable):
    ``learned_outcomes`` + ``behind_outcomes`` = ``log_outcomes``."""

    status: str
    database: str
    learned_outcomes: int | None
    log_outcomes: int | None
    behind_outcomes: int | None
    restored_checkpoint_seq: int
    catalog_actions: int
    auth: str


class Averages(msgspec.Struct, frozen=True):
    success_rate: float | None
    reward: float | None
    quality: float | None
    generation_time_s: float | None
    cost_usd: float | None


class DriftAlarmView(msgspec.Struct, frozen=True):
    model: str
    stream: str  # "success" (success rate dropped) or "residual" (outcomes below predictions)
    detected_at_outcome: int
    before: float
    after: float
    remaining_outcomes: int
    description: str


class DriftView(msgspec.Struct, frozen=True):
    """Drift alarms of the online policy: the active ones and how many were ever raised."""

    active: list[DriftAlarmView] = msgspec.field(default_factory=list)
    raised_total: int = 0


class Stats(msgspec.Struct, frozen=True):
    """Dataset statistics of the event log (decisions with outcomes), as ``GET /v1/stats`` and
    ``router export`` print them; the service adds its drift alarms."""

    decisions: int
    outcomes: int
    by_task_type: dict[str, int]
    by_outcome: dict[str, int]
    by_model: dict[str, int]
    averages: Averages
    current_model_version: str | None
    learned_outcomes: int
    drift: DriftView = msgspec.field(default_factory=DriftView)


class ModelReportView(msgspec.Struct, frozen=True):
    """One model's hold-out metrics next to its baseline's (null: undefined on the hold-out,
    as an AUC over one class), and its hyper-parameters."""

    name: str
    n_train: int
    n_holdout: int
    metrics: dict[str, float | None]
    baseline: dict[str, float | None]
    primary: str
    lower_is_better: bool
    beats_baseline: bool
    params: dict[str, float | None]


class ModelVersionView(msgspec.Struct, frozen=True):
    version: str
    status: str
    created_at: str
    data_from: str
    data_to: str
    n_train: int
    n_holdout: int
    feature_spec_hash: str
    metrics: dict[str, ModelReportView]
    gate: dict[str, object]
    promoted_at: str | None


class PromoteRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    force: bool = False


class PromotionView(msgspec.Struct, frozen=True):
    version: str
    promoted: bool
    reasons: list[str]
