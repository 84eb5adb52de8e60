"""The rows the request path appends to the event log: one decision per route, one outcome per
feedback. Built by router/services/routing.py, inserted by the event log (through the SQLite
writer process or the async engine).

They cross into the writer process as msgpack (array-like Structs: no keys, floats as 8 raw
bytes), so they hold only what the process can decode without the service's own types: scalars,
lists of numbers, and the JSON documents of the JSON columns, typed ``object`` here. On the
service's side those are msgspec Structs (the logged features, the response, the shadow
decisions); the process receives their plain decoded form, and both sides store the same JSON.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class ModelVersions(msgspec.Struct, frozen=True):
    """The versions that made a decision (the ``model_versions`` column)."""

    batch: str | None
    online: str
    strategy: str | None = None  # why the conservative strategy narrowed the actions
    template_ranking: list[str] | None = None


class DecisionRow(msgspec.Struct, frozen=True, array_like=True):
    """One row of ``decisions`` as the route path writes it (router/storage/models.py)."""

    id: str
    tenant_id: str
    request_id: str | None
    request_hash: str
    created_at: datetime
    catalog_fingerprint: str
    objective: str
    request: bytes  # the request's JSON, as it was hashed: stored verbatim
    features: object  # learners.decision.StoredFeatures
    allowed: list[int]
    probabilities: list[float]
    chosen_action: str
    chosen_position: int
    propensity: float
    explored: bool
    policy_name: str
    policy_version: str
    model_versions: ModelVersions
    learner_seq: int
    response: object  # router.schemas.RouteResponse
    project_id: str | None
    task_type: str | None
    language: str | None
    model: str | None
    shadow_probabilities: object = None  # {name: router.services.shadow.ShadowDecision}

    def columns(self) -> dict[str, Any]:
        """Column -> value, as SQLAlchemy's ``insert(Decision)`` takes them."""
        values = msgspec.structs.asdict(self)
        values["request"] = msgspec.Raw(self.request)
        return values


class OutcomeRow(msgspec.Struct, frozen=True, array_like=True):
    """One row of ``outcomes`` as the feedback path writes it (its ``seq`` is the database's)."""

    decision_id: str
    tenant_id: str
    created_at: datetime
    verdict: str
    quality: float | None
    generation_time_s: float | None
    cost_usd: float | None
    tokens: int | None
    regenerations: int
    code: str | None
    reward: float
    reward_source: str
    complexity: float | None = None  # the caller's, when it sent one
    # code_metrics: filled in after the outcome is stored (EventLog.set_code_metrics)

    def columns(self) -> dict[str, Any]:
        """Column -> value, as SQLAlchemy's ``insert(Outcome)`` takes them."""
        return msgspec.structs.asdict(self)
