"""Typed records read from the event log, and the one conversion of a logged decision (and its
outcome) into what the learners take."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from learners.decision import LoggedDecision, LoggedOutcome, StoredFeatures, learn_event
from learners.policy import LearnEvent
from learners.reward import Verdict


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class DecisionRecord(msgspec.Struct, frozen=True):
    id: str
    tenant_id: str
    request_id: str | None
    request_hash: str
    created_at: datetime
    catalog_fingerprint: str
    objective: str
    request: dict[str, Any]
    features: dict[str, Any]
    allowed: list[int]
    probabilities: list[float]
    chosen_action: str
    chosen_position: int
    propensity: float
    response: dict[str, Any]
    project_id: str | None = None
    task_type: str | None = None

    def stored_features(self) -> StoredFeatures:
        return msgspec.convert(self.features, StoredFeatures)

    def logged(self) -> LoggedDecision:
        """What learning needs of this decision (:func:`learners.decision.learn_event`)."""
        return logged_decision_of(self)


class LoggedColumns(Protocol):
    """The decision columns learning reads, as a result row of ``select(Decision.…)`` (by
    column name), a :class:`DecisionRecord` or offline replay's decision hold them."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def project_id(self) -> str | None: ...
    @property
    def task_type(self) -> str | None: ...
    @property
    def catalog_fingerprint(self) -> str: ...
    @property
    def features(self) -> object: ...  # the logged StoredFeatures, or their JSON
    @property
    def allowed(self) -> Sequence[int]: ...
    @property
    def chosen_position(self) -> int: ...
    @property
    def chosen_action(self) -> str: ...
    @property
    def propensity(self) -> float: ...


class LearnColumns(LoggedColumns, Protocol):
    """A decision's columns joined with its outcome's: what the learners fold."""

    @property
    def seq(self) -> int: ...
    @property
    def verdict(self) -> str: ...
    @property
    def reward(self) -> float: ...
    @property
    def quality(self) -> float | None: ...
    @property
    def generation_time_s(self) -> float | None: ...
    @property
    def cost_usd(self) -> float | None: ...


def logged_decision_of(row: LoggedColumns) -> LoggedDecision:
    """The logged decision of anything holding the event log's decision columns (a result
    row, a :class:`DecisionRecord`): what :func:`learners.decision.learn_event` joins."""
    return LoggedDecision(
        tenant_id=row.tenant_id,
        decided_at=as_utc(row.created_at),
        project_id=row.project_id,
        task_type=row.task_type,
        catalog_fingerprint=row.catalog_fingerprint,
        features=msgspec.convert(row.features, StoredFeatures),
        allowed=list(row.allowed),
        chosen_position=row.chosen_position,
        chosen_action=row.chosen_action,
        propensity=row.propensity,
    )


def learn_event_of(row: LearnColumns) -> LearnEvent:
    """The learn event of anything holding a decision's and its outcome's columns."""
    outcome = LoggedOutcome(verdict=Verdict(row.verdict), reward=row.reward,
                            quality=row.quality, generation_time_s=row.generation_time_s,
                            cost_usd=row.cost_usd)
    return learn_event(logged_decision_of(row), outcome, seq=row.seq)


class OutcomeRecord(msgspec.Struct, frozen=True):
    seq: int
    decision_id: str
    verdict: str
    quality: float | None
    generation_time_s: float | None
    cost_usd: float | None
    tokens: int | None
    regenerations: int
    reward: float
    reward_source: str


class Horizon(msgspec.Struct, frozen=True):
    """PostgreSQL's transaction horizon at one moment (``pg_current_snapshot()``): every
    transaction id below ``xmin`` has ended; ids from ``xmax`` on had not been assigned."""

    xmin: int
    xmax: int


class FoldRead(msgspec.Struct, frozen=True):
    """Outcomes after a sequence number, and (PostgreSQL) the horizon taken just before."""

    events: list[LearnEvent]
    horizon: Horizon | None


class OutcomeCounts(msgspec.Struct, frozen=True):
    """Outcomes in the log, and how many of them have a number above the learned one."""

    logged: int
    behind: int


class DatasetCounts(msgspec.Struct, frozen=True):
    decisions: int
    outcomes: int
    by_task_type: dict[str, int]
    by_outcome: dict[str, int]
    by_model: dict[str, int]
    success_rate: float | None
    reward: float | None
    quality: float | None
    generation_time_s: float | None
    cost_usd: float | None
