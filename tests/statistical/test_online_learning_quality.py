"""Seeded simulator runs (issue 4, item 7): from a cold start (no batch model, no outcome), the
service's online policy beats uniform choice and the best fixed action over the run, and River
alone learns too (it beats uniform)."""

from __future__ import annotations

import pytest

from offline.learning_bench import (
    PolicyContender,
    RiverContender,
    UniformContender,
    build_steps,
    fixed_action_rewards,
    run_contender,
)
from offline.world import World
from router.settings import load_settings

pytestmark = pytest.mark.slow

N = 3000
SEED = 5


def test_cold_start_policy_beats_uniform_and_the_best_fixed_action() -> None:
    settings = load_settings("configs/default.toml", {})
    profile = settings.profiles["balanced"]
    catalog = settings.catalog
    world = World(catalog=catalog, seed=SEED)
    steps = build_steps(world, N, SEED, profile)
    best_fixed = float(fixed_action_rewards(steps, catalog).mean(axis=0).max())

    service = PolicyContender("service", catalog, settings.bandit, settings.drift)
    try:
        chosen, _ = run_contender(service, world, steps, SEED, profile)
    finally:
        service.close()
    uniform, _ = run_contender(UniformContender(), world, steps, SEED, profile)
    river, _ = run_contender(RiverContender(catalog, settings.bandit), world, steps, SEED,
                             profile)
    # Standard error of a 3,000-decision mean of expected rewards is about 0.003.
    assert chosen.mean() > best_fixed + 0.02, (chosen.mean(), best_fixed)
    assert chosen.mean() > uniform.mean() + 0.1
    assert river.mean() > uniform.mean() + 0.05
