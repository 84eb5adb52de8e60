"""The optional VW + River stack of the served policy (``[bandit] stack_river``)."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from learners.bandit.vw_bandit import BanditSettings
from learners.policy import RIVER_MIN_OUTCOMES, OnlinePolicy
from learners.stacking import Stacker
from offline.learning_bench import PolicyContender, Step, build_steps, run_contender
from offline.world import World
from router.settings import load_settings
from tests.support import TEST_KEYRING

SETTINGS = load_settings("configs/default.toml", {})
PROFILE = SETTINGS.profiles["balanced"]
STACKED = msgspec.structs.replace(SETTINGS.bandit, stack_river=True)


@pytest.fixture(scope="module")
def world() -> World:
    return World(catalog=SETTINGS.catalog, seed=5)


@pytest.fixture(scope="module")
def steps(world: World) -> list[Step]:
    return build_steps(world, 260, 5, PROFILE)


def _run(contender: PolicyContender, world: World, steps: list[Step]) -> None:
    run_contender(contender, world, steps, 5, PROFILE)


def test_the_stack_is_vw_alone_until_river_has_learned_enough(world: World,
                                                              steps: list[Step]) -> None:
    plain = PolicyContender("same", world.catalog, SETTINGS.bandit)
    stacked = PolicyContender("same", world.catalog, STACKED)
    try:
        _run(plain, world, steps[:RIVER_MIN_OUTCOMES])
        _run(stacked, world, steps[:RIVER_MIN_OUTCOMES])
        probe = steps[RIVER_MIN_OUTCOMES]
        args = (probe.features, world.catalog, probe.allowed)
        assert stacked.policy.probabilities(*args) == plain.policy.probabilities(*args)
        # River's predictions join in now, with the stacker at its prior (VW alone) ...
        assert stacked.policy.probabilities(*args, probe.record) == pytest.approx(
            plain.policy.probabilities(*args, probe.record), abs=1e-12)
        # ... which it leaves as it learns the next outcomes.
        _run(stacked, world, steps[RIVER_MIN_OUTCOMES:])
        weights = stacked.policy._stacker.weights  # type: ignore[union-attr]
        assert not np.allclose(weights, [0.0, 1.0, 0.0], atol=1e-3)
        probabilities = stacked.policy.probabilities(*args, probe.record)
        assert probabilities != stacked.policy.probabilities(*args)
        assert sum(probabilities) == pytest.approx(1.0)
        assert min(probabilities) > 0.0
    finally:
        plain.close()
        stacked.close()


def test_a_restored_stack_decides_like_the_one_that_never_stopped(world: World,
                                                                  steps: list[Step]) -> None:
    original = PolicyContender("a", world.catalog, STACKED)
    try:
        _run(original, world, steps[:200])
        restored = OnlinePolicy(settings=STACKED, catalogs={world.catalog.fingerprint:
                                                            world.catalog})
        assert restored.restore(original.policy.snapshot(TEST_KEYRING), TEST_KEYRING)
        for step in steps[200:]:
            expected = original.policy.probabilities(step.features, world.catalog,
                                                     step.allowed, step.record)
            assert restored.probabilities(step.features, world.catalog, step.allowed,
                                          step.record) == expected
        # A stack's checkpoint is not the plain policy's, and the other way round.
        plain = OnlinePolicy(settings=SETTINGS.bandit,
                             catalogs={world.catalog.fingerprint: world.catalog})
        assert plain.fingerprint != restored.fingerprint
        assert not plain.restore(original.policy.snapshot(TEST_KEYRING), TEST_KEYRING)
        restored.close()
        plain.close()
    finally:
        original.close()


def test_the_stack_needs_squarecb() -> None:
    with pytest.raises(ValueError, match="stack_river needs exploration 'squarecb'"):
        BanditSettings(exploration="epsilon", stack_river=True)


def test_the_stacker_shrinks_towards_its_prior() -> None:
    stacker = Stacker(prior=(0.0, 1.0, 0.0), strength=1e9)
    for _ in range(100):
        stacker.learn_one(np.array([1.0, 0.2, 0.9]), 0.9)
    assert stacker.weights == pytest.approx([0.0, 1.0, 0.0], abs=1e-4)
