"""Decisions with their outcomes, page by page in decision order, for off-policy evaluation.

Each row carries what replay needs (DESIGN.md rule 1): the allowed actions, the full logged
probability vector, the chosen action and its propensity, the logged features and the reward.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from learners.decision import StoredFeatures
from learners.policy import LearnEvent
from router.public import (
    Checkpoint,
    Decision,
    Outcome,
    ShadowDecision,
    StorageUnavailableError,
    as_utc,
    learn_event_of,
)


class ReplayWindow(msgspec.Struct, frozen=True):
    """Which decisions to replay: a time window and optionally one tenant."""

    since: datetime | None = None
    until: datetime | None = None
    tenant_id: str | None = None


class ReplayDecision(msgspec.Struct, frozen=True):
    """A decision with its outcome as replay reads it from the event log."""

    id: str
    tenant_id: str
    created_at: datetime
    catalog_fingerprint: str
    allowed: list[int]
    probabilities: list[float]
    chosen_action: str
    chosen_position: int
    propensity: float
    policy_version: str
    features: StoredFeatures
    reward: float
    shadow_probabilities: dict[str, ShadowDecision] | None = None
    # The outcome as the online learners fold it (progressive validation learns from it).
    seq: int = 0
    verdict: str = "approved"
    quality: float | None = None
    generation_time_s: float | None = None
    cost_usd: float | None = None
    project_id: str | None = None
    task_type: str | None = None

    def learn_event(self) -> LearnEvent:
        """The event the online learners fold for this decision's outcome
        (:func:`learners.decision.learn_event`, as the service's fold builds it)."""
        return learn_event_of(self)


_COLUMNS = (
    Decision.id, Decision.tenant_id, Decision.created_at, Decision.catalog_fingerprint,
    Decision.allowed, Decision.probabilities, Decision.chosen_action, Decision.chosen_position,
    Decision.propensity, Decision.policy_version, Decision.features, Outcome.reward,
    Decision.shadow_probabilities, Outcome.seq, Outcome.verdict, Outcome.quality,
    Outcome.generation_time_s, Outcome.cost_usd, Decision.project_id, Decision.task_type,
)


def window_conditions(window: ReplayWindow) -> list[Any]:
    """The SQL conditions that select the decisions of ``window``."""
    conditions: list[Any] = []
    if window.since is not None:
        conditions.append(Decision.created_at >= window.since)
    if window.until is not None:
        conditions.append(Decision.created_at < window.until)
    if window.tenant_id is not None:
        conditions.append(Decision.tenant_id == window.tenant_id)
    return conditions


async def logged_decisions(
    engine: AsyncEngine, window: ReplayWindow, *, after: tuple[datetime, str] | None,
    limit: int,
) -> list[ReplayDecision]:
    """Up to ``limit`` decisions with an outcome in ``window``, ordered by (time, id), strictly
    after the (time, id) key ``after``."""
    conditions = window_conditions(window)
    if after is not None:
        at, key = after
        conditions.append(or_(Decision.created_at > at,
                              and_(Decision.created_at == at, Decision.id > key)))
    query = (select(*_COLUMNS).join(Outcome, Outcome.decision_id == Decision.id)
             .where(*conditions).order_by(Decision.created_at, Decision.id).limit(limit))
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
    except (OperationalError, DBAPIError) as exc:
        raise StorageUnavailableError("the event log is unavailable") from exc
    out = []
    for row in rows:
        values = row._asdict()
        values["created_at"] = as_utc(values["created_at"])
        values["features"] = msgspec.convert(values["features"], StoredFeatures)
        out.append(msgspec.convert(values, ReplayDecision))
    return out


async def first_outcome_seq(engine: AsyncEngine, window: ReplayWindow) -> int | None:
    """The lowest outcome sequence number among the decisions of ``window`` (None: none)."""
    conditions = window_conditions(window)
    query = (select(func.min(Outcome.seq)).join(Decision, Outcome.decision_id == Decision.id)
             .where(*conditions))
    try:
        async with engine.connect() as conn:
            first = await conn.scalar(query)
    except (OperationalError, DBAPIError) as exc:
        raise StorageUnavailableError("the event log is unavailable") from exc
    return None if first is None else int(first)


async def bandit_snapshot(engine: AsyncEngine, learner: str,
                          checkpoint_id: str | None, *, before_seq: int | None = None
                          ) -> tuple[int, int, bytes] | None:
    """(id, last outcome sequence number, state) of checkpoint ``checkpoint_id`` of
    ``learner``, or of its newest checkpoint when ``checkpoint_id`` is None (with
    ``before_seq``: the newest that holds no outcome numbered ``before_seq`` or later)."""
    query = select(Checkpoint.id, Checkpoint.last_seq, Checkpoint.state).where(
        Checkpoint.learner == learner)
    if before_seq is not None:
        query = query.where(Checkpoint.last_seq < before_seq)
    if checkpoint_id is not None:
        if not checkpoint_id.isdigit():
            return None
        query = query.where(Checkpoint.id == int(checkpoint_id))
    query = query.order_by(Checkpoint.last_seq.desc()).limit(1)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else (int(row[0]), int(row[1]), bytes(row[2]))
