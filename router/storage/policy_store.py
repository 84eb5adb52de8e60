"""Shadow-policy records and promotions of bandit configurations.

``ShadowDecision`` is what each shadow policy logs beside a served decision. ``router promote``
records every gate decision (``policy_promotions``) and, when a bandit configuration is
promoted, appends it to ``active_policies``: the newest row is the served configuration, which
every service process polls (:class:`router.services.shadow.ActivePolicyWatcher`).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime

import msgspec
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from learners.bandit.settings import BanditSettings
from learners.interval import Interval
from router.storage.database import connection
from router.storage.models import ActivePolicy, PolicyPromotion
from router.storage.repository import as_utc
from router.storage.stored_json import convert_stored


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


class PolicyEvidence(msgspec.Struct, frozen=True):
    """One policy's DR estimate on the window, with both intervals and weight diagnostics
    (``unsupported_mass``: its mean probability on actions the window gives no support;
    ``lower_bound``: the lower of the two intervals' low ends, which the gate compares)."""

    policy: str
    n: int
    ess: float
    dr: Interval
    lower_bound: float
    unsupported_mass: float = 0.0


class GateEvidence(msgspec.Struct, frozen=True):
    """What the gate compared (``policy_promotions.estimates``). A number that was NaN or
    infinite is stored as null and read back as NaN; evidence recorded without ``min_ess``,
    ``reward_range``, ``unsupported_mass`` or ``clipped`` reads with their defaults."""

    current: PolicyEvidence
    candidate: PolicyEvidence
    level: float
    bootstrap: int
    rule: str
    min_ess: float = 100.0
    reward_range: tuple[float, float] = (0.0, 1.0)


class PromotionRecord(msgspec.Struct, frozen=True):
    """One gate decision: ``promoted``, ``refused`` or ``forced``, with its evidence."""

    id: int
    created_at: datetime
    candidate: str
    window: PromotionWindow
    n: int
    estimates: GateEvidence
    decision: str
    reason: str


class NewPromotion(msgspec.Struct, frozen=True):
    candidate: str
    window: PromotionWindow
    n: int
    estimates: GateEvidence
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
                {**msgspec.to_builtins(promotion), "created_at": now},
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
            out.append(convert_stored(values, PromotionRecord))
        return out
