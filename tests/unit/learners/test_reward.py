from __future__ import annotations

import pytest

from learners.reward import DEFAULT_PROFILES, Outcome, RewardProfile, Verdict, compute_reward

BALANCED = DEFAULT_PROFILES["balanced"]


def test_verdict_only_reward_is_the_verdict_value() -> None:
    assert compute_reward(Outcome(verdict=Verdict.APPROVED), BALANCED) == 1.0
    assert compute_reward(Outcome(verdict=Verdict.REJECTED), BALANCED) == 0.0
    assert compute_reward(Outcome(verdict=Verdict.MODIFIED), BALANCED) == BALANCED.modified_value


def test_components_are_weighted_means() -> None:
    profile = RewardProfile(
        verdict_weight=0.5, quality_weight=0.5, cost_weight=0.0, time_weight=0.0
    )
    outcome = Outcome(verdict=Verdict.APPROVED, quality=6.0)
    assert compute_reward(outcome, profile) == pytest.approx(0.8)


def test_cost_and_time_lower_the_reward() -> None:
    cheap = Outcome(verdict=Verdict.APPROVED, quality=8, cost_usd=0.001, generation_time_s=5)
    dear = Outcome(verdict=Verdict.APPROVED, quality=8, cost_usd=0.09, generation_time_s=55)
    assert compute_reward(cheap, BALANCED) > compute_reward(dear, BALANCED)


def test_cost_profile_cares_more_about_cost_than_quality_profile() -> None:
    cheap = Outcome(verdict=Verdict.APPROVED, quality=6, cost_usd=0.001)
    dear = Outcome(verdict=Verdict.APPROVED, quality=9, cost_usd=0.05)
    cost, quality = DEFAULT_PROFILES["cost"], DEFAULT_PROFILES["quality"]
    assert compute_reward(cheap, cost) > compute_reward(dear, cost)
    assert compute_reward(dear, quality) > compute_reward(cheap, quality)


def test_regenerations_are_penalised_and_reward_stays_in_range() -> None:
    outcome = Outcome(verdict=Verdict.APPROVED, regenerations=2)
    assert compute_reward(outcome, BALANCED) == pytest.approx(1.0 - 2 * 0.05)
    assert compute_reward(Outcome(verdict=Verdict.REJECTED, regenerations=50), BALANCED) == 0.0


def test_profile_needs_a_positive_weight() -> None:
    with pytest.raises(ValueError, match="positive weight"):
        RewardProfile(verdict_weight=0, quality_weight=0, cost_weight=0, time_weight=0)
