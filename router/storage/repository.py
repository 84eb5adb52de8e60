"""The event log: decisions, outcomes, checkpoints, catalogs and tenants in one SQL database.

:class:`EventLog` joins the request path's statements (router/storage/hot_path.py: the one
write path per database) and the reads beside it (router/storage/log_queries.py), and holds the
writes of start-up and of the learners' checkpoints. Database errors become
:mod:`router.errors` in router/storage/log_base.py, nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import bindparam, delete, func, insert, select, update

from learners.catalog import Catalog
from router.storage.hot_path import HotPath
from router.storage.log_base import DuplicateKeyError
from router.storage.log_queries import LogQueries
from router.storage.models import CatalogVersion, Checkpoint, Tenant
from router.storage.records import (
    DatasetCounts,
    DecisionRecord,
    FoldRead,
    Horizon,
    OutcomeCounts,
    OutcomeRecord,
    as_utc,
    learn_event_of,
    logged_decision_of,
)

__all__ = [
    "DatasetCounts",
    "DecisionRecord",
    "DuplicateKeyError",
    "EventLog",
    "FoldRead",
    "Horizon",
    "OutcomeCounts",
    "OutcomeRecord",
    "as_utc",
    "learn_event_of",
    "logged_decision_of",
]


def _now() -> datetime:
    return datetime.now(UTC)


class EventLog(HotPath, LogQueries):
    """Decisions, outcomes, checkpoints, catalogs and tenants in one SQL database."""

    # --- catalogs and tenants -------------------------------------------------------------

    async def ensure_catalog(self, catalog: Catalog) -> None:
        async with self._transaction(write=True) as conn:
            found = await conn.scalar(
                select(CatalogVersion.fingerprint).where(
                    CatalogVersion.fingerprint == catalog.fingerprint
                )
            )
            if found is None:
                await conn.execute(
                    insert(CatalogVersion).values(
                        fingerprint=catalog.fingerprint,
                        catalog=catalog.to_json(),
                        created_at=_now(),
                    )
                )

    async def add_decision_counts(self, counts: Mapping[str, int]) -> None:
        """Add ``counts`` (tenant -> decisions logged since the last call) to the tenants'
        decision counts, in one transaction."""
        statement = (
            update(Tenant)
            .where(Tenant.id == bindparam("tenant"))
            .values(decisions=Tenant.decisions + bindparam("logged"))
        )
        rows = [{"tenant": tenant, "logged": n} for tenant, n in sorted(counts.items())]
        async with self._transaction(write=True) as conn:
            await conn.execute(statement, rows)


    # --- checkpoints ---------------------------------------------------------------------

    async def save_checkpoint(self, learner: str, last_seq: int, state: bytes, keep: int) -> None:
        async with self._transaction(write=True) as conn:
            newest = await conn.scalar(
                select(func.max(Checkpoint.last_seq)).where(Checkpoint.learner == learner)
            )
            if newest is not None and newest >= last_seq:
                return  # another process already saved this state or a newer one
            await conn.execute(
                insert(Checkpoint).values(
                    learner=learner, last_seq=last_seq, state=state, created_at=_now()
                )
            )
            old = (
                await conn.scalars(
                    select(Checkpoint.id)
                    .where(Checkpoint.learner == learner)
                    .order_by(Checkpoint.last_seq.desc())
                    .offset(keep)
                )
            ).all()
            if old:
                await conn.execute(delete(Checkpoint).where(Checkpoint.id.in_(old)))

    async def latest_checkpoint(self, learner: str) -> tuple[int, bytes] | None:
        async with self._transaction() as conn:
            row = (
                await conn.execute(
                    select(Checkpoint.last_seq, Checkpoint.state)
                    .where(Checkpoint.learner == learner)
                    .order_by(Checkpoint.last_seq.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else (int(row[0]), bytes(row[1]))
