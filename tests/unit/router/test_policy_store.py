"""Promotion records: the gate's evidence typed in, JSON in ``policy_promotions.estimates``,
typed out, evidence recorded by earlier versions of ``router promote`` included."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from router.storage.models import PolicyPromotion
from router.storage.policy_store import PolicyStore, PromotionWindow

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


async def test_evidence_recorded_before_the_support_and_ess_rules_still_reads(
    engine: AsyncEngine,
) -> None:
    """The evidence as the first ``router promote`` stored it: no ``clipped``,
    ``unsupported_mass``, ``min_ess`` or ``reward_range``; a candidate without a finite
    interval (its ends and standard error were NaN, stored as null)."""
    def policy(name: str, value: float, ci: list[float | None], se: float | None,
               lower: float | None) -> dict[str, object]:
        return {"policy": name, "n": 2, "ess": 2.0, "lower_bound": lower, "dr": {
            "value": value, "ci": ci, "ci_analytic": ci, "se": se}}

    legacy = {"current": policy("logged", 0.5, [0.4, 0.6], 0.05, 0.4),
              "candidate": policy("fixed:a0", 0.8, [None, None], None, None),
              "level": 0.95, "bootstrap": 200,
              "rule": "candidate DR 95% lower bound > current policy's DR estimate"}
    async with engine.begin() as conn:
        await conn.execute(insert(PolicyPromotion).values(
            created_at=NOW, candidate="batch:v1", window={"since": None, "until": None,
                                                           "tenant": None},
            n=2, estimates=legacy, decision="refused", reason="no finite 95% lower bound"))
    [record] = await PolicyStore(engine).promotions()
    assert (record.candidate, record.window, record.n) == ("batch:v1", PromotionWindow(), 2)
    evidence = record.estimates
    assert (evidence.level, evidence.bootstrap, evidence.rule) == (0.95, 200, legacy["rule"])
    assert (evidence.min_ess, evidence.reward_range) == (100.0, (0.0, 1.0))
    current, candidate = evidence.current, evidence.candidate
    assert (current.dr.value, current.dr.ci, current.lower_bound) == (0.5, (0.4, 0.6), 0.4)
    assert (current.unsupported_mass, current.dr.clipped) == (0.0, False)
    assert candidate.dr.value == 0.8
    assert all(math.isnan(x) for x in (*candidate.dr.ci, candidate.dr.se, candidate.lower_bound))
