"""The optional VW + River stack of the served policy (``[bandit] stack_river``) and its online
stacker (:class:`learners.stacking.Stacker`). The policies decide and learn through the decision
core (the suite's router contender) on the simulator's stream."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from learners.bandit.settings import BanditSettings
from learners.features import describe_context
from learners.policy import RIVER_MIN_OUTCOMES, OnlinePolicy
from learners.stacking import StackedOutcome, Stacker
from offline.bench.suite.baselines import decision_time
from offline.bench.suite.environment import SuiteStep
from offline.bench.suite.router_contender import RouterContender, RouterVariant
from offline.bench.suite.runner import run_contender
from offline.bench.suite.simulator_env import SimulatorEnvironment
from router.settings import load_settings
from tests.support import TEST_KEYRING

SETTINGS = load_settings("configs/default.toml", {})
STACKED = msgspec.structs.replace(SETTINGS.bandit, stack_river=True)
SEED = 5


@pytest.fixture(scope="module")
def env() -> SimulatorEnvironment:
    return SimulatorEnvironment(steps=260)


@pytest.fixture(scope="module")
def steps(env: SimulatorEnvironment) -> list[SuiteStep]:
    return list(env.steps(SEED))


def _router(env: SimulatorEnvironment, bandit: BanditSettings) -> RouterContender:
    variant = RouterVariant(name="router", bandit=bandit, drift=SETTINGS.drift)
    return RouterContender(variant, env.catalog, env.name, SEED)


def _probe(policy: OnlinePolicy, env: SimulatorEnvironment, step: SuiteStep,
           with_record: bool = True) -> list[float]:
    """The policy's probabilities over every action for ``step``'s request."""
    features, record = describe_context(step.context, decision_time(step.index))
    return policy.probabilities(features, env.catalog, list(range(len(env.catalog))),
                                record if with_record else None)


def test_the_stack_is_vw_alone_until_river_has_learned_enough(
        env: SimulatorEnvironment, steps: list[SuiteStep]) -> None:
    plain, stacked = _router(env, SETTINGS.bandit), _router(env, STACKED)
    # With immediate feedback every decision but the last has been learned.
    first = steps[:RIVER_MIN_OUTCOMES + 1]
    try:
        run_contender(plain, env, first, SEED)
        run_contender(stacked, env, first, SEED)
        probe = steps[RIVER_MIN_OUTCOMES + 1]
        assert stacked.policy.river_success(
            describe_context(probe.context, decision_time(probe.index))[1], env.catalog,
            0) is not None
        assert _probe(stacked.policy, env, probe, False) == _probe(plain.policy, env, probe,
                                                                   False)
        # River's predictions join in now, with the stacker at its prior (VW alone) ...
        assert _probe(stacked.policy, env, probe) == pytest.approx(
            _probe(plain.policy, env, probe), abs=1e-12)
        # ... which it leaves as it learns the next outcomes.
        run_contender(stacked, env, steps[RIVER_MIN_OUTCOMES + 1:], SEED)
        weights = stacked.policy._learners.stacker.weights  # type: ignore[union-attr]
        assert not np.allclose(weights, [0.0, 1.0, 0.0], atol=1e-3)
        probabilities = _probe(stacked.policy, env, probe)
        assert probabilities != _probe(stacked.policy, env, probe, False)
        assert sum(probabilities) == pytest.approx(1.0)
        assert min(probabilities) > 0.0
    finally:
        plain.close()
        stacked.close()


def test_a_restored_stack_decides_like_the_one_that_never_stopped(
        env: SimulatorEnvironment, steps: list[SuiteStep]) -> None:
    original = _router(env, STACKED)
    catalogs = {env.catalog.fingerprint: env.catalog}
    try:
        run_contender(original, env, steps[:200], SEED)
        restored = OnlinePolicy(settings=STACKED, catalogs=catalogs)
        assert restored.restore(original.policy.snapshot(TEST_KEYRING), TEST_KEYRING)
        for step in steps[200:]:
            assert _probe(restored, env, step) == _probe(original.policy, env, step)
        # A stack's checkpoint is not the plain policy's, and the other way round.
        plain = OnlinePolicy(settings=SETTINGS.bandit, catalogs=catalogs)
        assert plain.fingerprint != restored.fingerprint
        assert not plain.restore(original.policy.snapshot(TEST_KEYRING), TEST_KEYRING)
        restored.close()
        plain.close()
    finally:
        original.close()


def test_the_stack_needs_squarecb() -> None:
    with pytest.raises(ValueError, match="stack_river needs exploration 'squarecb'"):
        BanditSettings(exploration="epsilon", stack_river=True)


def test_the_stacker_starts_at_its_prior_and_learns_the_weights_of_the_outcomes() -> None:
    stacker = Stacker(prior=(0.0, 1.0, 0.0), strength=1.0, decay=1.0)
    assert stacker.weights.tolist() == [0.0, 1.0, 0.0]
    rng = np.random.default_rng(0)
    for _ in range(3000):
        x = np.array([1.0, *rng.uniform(0.0, 1.0, 2)])
        stacker.learn_one(StackedOutcome(columns=x, reward=0.1 + 0.2 * x[1] + 0.6 * x[2]))
    assert stacker.weights == pytest.approx([0.1, 0.2, 0.6], abs=0.01)
    assert stacker.predict_one(np.array([[1.0, 0.5, 0.5]]))[0] == pytest.approx(0.5, abs=0.01)


def test_the_stacker_forgets_outcomes_older_than_its_decay_window() -> None:
    stacker = Stacker(prior=(0.0, 1.0), strength=1.0, decay=0.99)
    for _ in range(2000):
        stacker.learn_one(StackedOutcome(columns=np.array([1.0, 0.5]), reward=0.2))
    for _ in range(2000):
        stacker.learn_one(StackedOutcome(columns=np.array([1.0, 0.5]), reward=0.8))
    assert stacker.predict_one(np.array([[1.0, 0.5]]))[0] == pytest.approx(0.8, abs=0.01)


def test_the_stacker_shrinks_towards_its_prior() -> None:
    stacker = Stacker(prior=(0.0, 1.0, 0.0), strength=1e9)
    for _ in range(100):
        stacker.learn_one(StackedOutcome(columns=np.array([1.0, 0.2, 0.9]), reward=0.9))
    assert stacker.weights == pytest.approx([0.0, 1.0, 0.0], abs=1e-4)
