"""Seeded simulation of drift (issue 4, items 4 and 7): one model's success drops; the policy's
detector raises an alarm and traffic moves away from the model within 1,000 decisions."""

from __future__ import annotations

import pytest

from offline.learning_bench import (
    PolicyContender,
    build_steps,
    decisions_to_move_away,
    run_contender,
)
from offline.world import World
from router.settings import load_settings

pytestmark = pytest.mark.slow

DRIFT_AT = 1500
TARGET = 1000


def test_traffic_moves_away_from_a_drifting_model_and_an_alarm_fires() -> None:
    settings = load_settings("configs/default.toml", {})
    profile = settings.profiles["balanced"]
    world = World(catalog=settings.catalog, seed=2, drift_model="code-specialist",
                  drift_at=DRIFT_AT)
    steps = build_steps(world, DRIFT_AT + 1300, seed=2, profile=profile)
    contender = PolicyContender("service", settings.catalog, settings.bandit, settings.drift)
    try:
        _, models = run_contender(contender, world, steps, seed=2, profile=profile)
        alarms = contender.policy.drift.history
    finally:
        contender.close()
    before = sum(m == "code-specialist" for m in models[DRIFT_AT - 200:DRIFT_AT]) / 200
    assert before > 0.3, "the scenario needs a model with traffic to lose"
    moved = decisions_to_move_away(models, "code-specialist", DRIFT_AT)
    assert moved is not None
    assert moved <= TARGET
    fired = [a for a in alarms if a.model == "code-specialist"]
    assert fired, alarms
    assert DRIFT_AT < fired[0].detected_at <= DRIFT_AT + TARGET
    assert not [a for a in alarms if a.detected_at <= DRIFT_AT]  # no false alarm before
