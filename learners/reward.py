"""Reward profiles: how an outcome (verdict, quality, time, cost) becomes a number in [0, 1].

A profile is a weighted mean of components that each lie in [0, 1]:

- ``verdict``: approved = 1, modified = ``modified_value``, rejected = 0;
- ``quality``: quality / 10 (skipped when the feedback has no quality);
- ``cost``: 1 - min(cost / cost_scale_usd, 1) (skipped when unknown);
- ``time``: 1 - min(time / time_scale_s, 1) (skipped when unknown);

minus ``regeneration_penalty`` per regeneration, clipped to [0, 1]. Components that the
feedback does not carry drop out of the mean, so a missing quality neither helps nor hurts.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec
from msgspec import Meta

Weight = Annotated[float, Meta(ge=0.0, le=1000.0)]


class Verdict(StrEnum):
    APPROVED = "approved"
    MODIFIED = "modified"
    REJECTED = "rejected"


class RewardProfile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Weights of the reward components; see the module docstring."""

    verdict_weight: Weight = 0.6
    quality_weight: Weight = 0.2
    cost_weight: Weight = 0.1
    time_weight: Weight = 0.1
    modified_value: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.5
    cost_scale_usd: Annotated[float, Meta(gt=0.0)] = 0.10
    time_scale_s: Annotated[float, Meta(gt=0.0)] = 60.0
    regeneration_penalty: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.05

    def __post_init__(self) -> None:
        if self.verdict_weight + self.quality_weight + self.cost_weight + self.time_weight <= 0:
            raise ValueError("a reward profile needs at least one positive weight")


class Outcome(msgspec.Struct, frozen=True):
    """What happened after a decision, as far as the reward is concerned."""

    verdict: Verdict
    quality: float | None = None
    generation_time_s: float | None = None
    cost_usd: float | None = None
    regenerations: int = 0


def verdict_value(verdict: Verdict, profile: RewardProfile) -> float:
    if verdict is Verdict.APPROVED:
        return 1.0
    if verdict is Verdict.MODIFIED:
        return profile.modified_value
    return 0.0


def compute_reward(outcome: Outcome, profile: RewardProfile) -> float:
    """Reward in [0, 1] of ``outcome`` under ``profile``."""
    total = profile.verdict_weight * verdict_value(outcome.verdict, profile)
    weight = profile.verdict_weight
    if outcome.quality is not None and profile.quality_weight > 0:
        total += profile.quality_weight * min(max(outcome.quality / 10.0, 0.0), 1.0)
        weight += profile.quality_weight
    if outcome.cost_usd is not None and profile.cost_weight > 0:
        total += profile.cost_weight * (1.0 - min(outcome.cost_usd / profile.cost_scale_usd, 1.0))
        weight += profile.cost_weight
    if outcome.generation_time_s is not None and profile.time_weight > 0:
        ratio = min(outcome.generation_time_s / profile.time_scale_s, 1.0)
        total += profile.time_weight * (1.0 - ratio)
        weight += profile.time_weight
    value = total / weight if weight > 0 else 0.0
    value -= profile.regeneration_penalty * outcome.regenerations
    return min(max(value, 0.0), 1.0)


DEFAULT_PROFILES: dict[str, RewardProfile] = {
    "balanced": RewardProfile(),
    "quality": RewardProfile(
        verdict_weight=0.55, quality_weight=0.4, cost_weight=0.025, time_weight=0.025
    ),
    "cost": RewardProfile(
        verdict_weight=0.5,
        quality_weight=0.1,
        cost_weight=0.35,
        time_weight=0.05,
        cost_scale_usd=0.05,
    ),
}
