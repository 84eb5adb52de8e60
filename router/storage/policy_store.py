"""Shadow-policy records and promotions of bandit configurations.

``ShadowDecision`` is what each shadow policy logs beside a served decision. ``router promote``
records every gate decision (``policy_promotions``) and, when a bandit configuration is
promoted, appends it to ``active_policies``: the newest row is the served configuration, which
every service process polls (:class:`router.services.shadow.ActivePolicyWatcher`).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from learners.bandit.settings import BanditSettings
from router.storage.database import connection
from router.storage.models import ActivePolicy, PolicyPromotion
from router.storage.repository import as_utc


class ShadowDecision(msgspec.Struct, frozen=True):
    """One shadow's answer to a route call: its version (configuration fingerprint and
    outcomes learned) and its probabilities over the decision's allowed actions, in order."""

    version: str
    probabilities: list[float]


class ActiveBandit(msgspec.Struct, frozen=True):
    """The promoted bandit configuration in force."""

    id: int
    created_at: datetime
    candidate: str
    fingerprint: str
    bandit: BanditSettings


class PromotionWindow(msgspec.Struct, frozen=True):
    """The slice of the event log a gate decision was evaluated on (None: unbounded, or every
    tenant); times as ISO 8601 text."""

    since: str | None = None
    until: str | None = None
    tenant: str | None = None


class PromotionRecord(msgspec.Struct, frozen=True):
    """One gate decision: ``promoted``, ``refused`` or ``forced``, with its evidence."""

    id: int
    created_at: datetime
    candidate: str
    window: PromotionWindow
    n: int
    estimates: dict[str, Any]
    decision: str
    reason: str


class NewPromotion(msgspec.Struct, frozen=True):
    candidate: str
    window: PromotionWindow
    n: int
    estimates: dict[str, Any]
    decision: str
    reason: str


class PolicyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def _connection(self, *, write: bool = False) -> AbstractAsyncContextManager[AsyncConnection]:
        return connection(self.engine, write=write)

    async def record(self, promotion: NewPromotion, *, activate: tuple[str, BanditSettings]
                     | None = None) -> int:
        """Store a gate decision and, with ``activate`` (fingerprint, settings), make that
        bandit configuration the served one, in one transaction; returns the decision's id."""
        now = datetime.now(UTC)
        async with self._connection(write=True) as conn:
            result = await conn.execute(
                insert(PolicyPromotion).returning(PolicyPromotion.id),
                {**msgspec.structs.asdict(promotion), "created_at": now,
                 "window": msgspec.structs.asdict(promotion.window)},
            )
            promotion_id = int(result.scalar_one())
            if activate is not None:
                fingerprint, settings = activate
                await conn.execute(insert(ActivePolicy).values(
                    created_at=now, candidate=promotion.candidate, fingerprint=fingerprint,
                    bandit=msgspec.to_builtins(settings), promotion_id=promotion_id))
        return promotion_id

    async def active_id(self) -> int | None:
        """Id of the newest promoted configuration (one indexed lookup: services poll this)."""
        async with self._connection() as conn:
            value = await conn.scalar(select(ActivePolicy.id)
                                      .order_by(ActivePolicy.id.desc()).limit(1))
        return None if value is None else int(value)

    async def active(self) -> ActiveBandit | None:
        query = (select(ActivePolicy.id, ActivePolicy.created_at, ActivePolicy.candidate,
                        ActivePolicy.fingerprint, ActivePolicy.bandit)
                 .order_by(ActivePolicy.id.desc()).limit(1))
        async with self._connection() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        values = row._asdict()
        values["created_at"] = as_utc(values["created_at"])
        return msgspec.convert(values, ActiveBandit)

    async def promotions(self) -> list[PromotionRecord]:
        """Every recorded gate decision, oldest first."""
        query = select(PolicyPromotion.id, PolicyPromotion.created_at, PolicyPromotion.candidate,
                       PolicyPromotion.window, PolicyPromotion.n, PolicyPromotion.estimates,
                       PolicyPromotion.decision, PolicyPromotion.reason
                       ).order_by(PolicyPromotion.id)
        async with self._connection() as conn:
            rows = (await conn.execute(query)).all()
        out = []
        for row in rows:
            values = row._asdict()
            values["created_at"] = as_utc(values["created_at"])
            out.append(msgspec.convert(values, PromotionRecord))
        return out
