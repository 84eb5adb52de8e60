"""The event log's reads beside the request path: the learners' fold, counts for readiness and
statistics, and the catalogs and projects loaded at start."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from learners.catalog import Catalog
from learners.policy import LearnEvent
from learners.reward import Verdict
from router.storage.log_base import LogDatabase
from router.storage.models import CatalogVersion, Decision, Outcome, Tenant
from router.storage.records import (
    DatasetCounts,
    FoldRead,
    Horizon,
    OutcomeCounts,
    as_utc,
    learn_event_of,
)

_HORIZON = text(
    "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text FROM pg_current_snapshot() s"
)


def _float(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


async def read_catalogs(conn: AsyncConnection) -> dict[str, Catalog]:
    """Every catalog the log's decisions name, by fingerprint."""
    rows = await conn.execute(select(CatalogVersion.fingerprint, CatalogVersion.catalog))
    return {fp: Catalog.from_json(raw) for fp, raw in rows}


class LogQueries(LogDatabase):
    """Reads of decisions, outcomes, catalogs and tenants off the request path."""

    async def load_catalogs(self) -> dict[str, Catalog]:
        async with self._transaction() as conn:
            return await read_catalogs(conn)

    async def tenant_decisions(self, tenant_id: str) -> int:
        """The decision count of ``tenant_id`` (one primary-key look-up)."""
        async with self._transaction() as conn:
            value = await conn.scalar(select(Tenant.decisions).where(Tenant.id == tenant_id))
        return int(value or 0)

    async def project_first_decisions(self) -> list[tuple[str, str, datetime]]:
        """(tenant, project, time of its first decision) for every project in the log."""
        query = (
            select(Decision.tenant_id, Decision.project_id, func.min(Decision.created_at))
            .where(Decision.project_id.is_not(None))
            .group_by(Decision.tenant_id, Decision.project_id)
        )
        async with self._transaction() as conn:
            rows = (await conn.execute(query)).all()
        return [(str(t), str(p), as_utc(at)) for t, p, at in rows]

    async def outcome_counts(self, learned_seq: int) -> OutcomeCounts:
        """How many outcomes the log holds, and how many are numbered above ``learned_seq``
        (numbers no row holds are not counted: PostgreSQL sequences have holes)."""
        query = select(func.count(), func.count().filter(Outcome.seq > learned_seq))
        async with self._transaction() as conn:
            logged, behind = (await conn.execute(query)).one()
        return OutcomeCounts(logged=int(logged), behind=int(behind))

    async def fold_read(self, seq: int, limit: int = 1000) -> FoldRead:
        """:meth:`learn_events_after`, after (PostgreSQL) taking the transaction horizon: an
        outcome whose transaction had ended by then is among the events."""
        horizon = None
        if self.engine.dialect.name == "postgresql":
            async with self._transaction() as conn:
                xmin, xmax = (await conn.execute(_HORIZON)).one()
            horizon = Horizon(xmin=int(xmin), xmax=int(xmax))
        return FoldRead(events=await self.learn_events_after(seq, limit), horizon=horizon)

    async def learn_events_after(self, seq: int, limit: int = 1000) -> list[LearnEvent]:
        """Outcomes with a sequence number above ``seq``, in order, joined with their
        decision's logged features and propensity."""
        query = (
            select(
                Outcome.seq,
                Decision.tenant_id,
                Decision.created_at,
                Decision.project_id,
                Decision.chosen_action,
                Decision.catalog_fingerprint,
                Decision.features,
                Decision.allowed,
                Decision.chosen_position,
                Decision.propensity,
                Decision.task_type,
                Outcome.reward,
                Outcome.verdict,
                Outcome.quality,
                Outcome.generation_time_s,
                Outcome.cost_usd,
            )
            .join(Decision, Decision.id == Outcome.decision_id)
            .where(Outcome.seq > seq)
            .order_by(Outcome.seq)
            .limit(limit)
        )
        async with self._transaction() as conn:
            rows = (await conn.execute(query)).all()
        return [learn_event_of(row) for row in rows]

    async def dataset_counts(self, tenant_id: str | None) -> DatasetCounts:
        """Counts and averages over decisions with outcomes (``tenant_id`` None: all)."""
        joined = select(Decision.id).join(Outcome, Outcome.decision_id == Decision.id)
        where = [] if tenant_id is None else [Decision.tenant_id == tenant_id]

        async def grouped(column: Any) -> dict[str, int]:
            query = (
                select(column, func.count())
                .select_from(Decision)
                .join(Outcome, Outcome.decision_id == Decision.id)
                .where(*where)
                .group_by(column)
            )
            rows = (await conn.execute(query)).all()
            return {str(key if key is not None else "unknown"): int(n) for key, n in rows}

        async with self._transaction() as conn:
            decisions = int(
                await conn.scalar(select(func.count()).select_from(Decision).where(*where)) or 0
            )
            outcomes = int(
                await conn.scalar(select(func.count()).select_from(joined.where(*where).subquery()))
                or 0
            )
            by_task_type = await grouped(Decision.task_type)
            by_outcome = await grouped(Outcome.verdict)
            by_model = await grouped(Decision.model)
            averages = (
                await conn.execute(
                    select(
                        func.avg(Outcome.reward),
                        func.avg(Outcome.quality),
                        func.avg(Outcome.generation_time_s),
                        func.avg(Outcome.cost_usd),
                    )
                    .select_from(Decision)
                    .join(Outcome, Outcome.decision_id == Decision.id)
                    .where(*where)
                )
            ).one()
        approved = by_outcome.get(Verdict.APPROVED.value, 0)
        return DatasetCounts(
            decisions=decisions,
            outcomes=outcomes,
            by_task_type=by_task_type,
            by_outcome=by_outcome,
            by_model=by_model,
            success_rate=approved / outcomes if outcomes else None,
            reward=_float(averages[0]),
            quality=_float(averages[1]),
            generation_time_s=_float(averages[2]),
            cost_usd=_float(averages[3]),
        )
