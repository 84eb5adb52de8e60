"""The hybrid contenders' parts: the stacker, the VW-only stack reproducing the service's SquareCB
the own-log batch models' training schedule, and the warm-started protocol."""

from __future__ import annotations

import numpy as np
import pytest

from learners.catalog import Catalog
from learners.stacking import Stacker
from offline.hybrid_bench import OwnLogBatch, StackedContender
from offline.learning_bench import PolicyContender, Step, _outcome, build_steps, run_contender
from offline.world import SimOutcome, World
from router.settings import load_settings

SETTINGS = load_settings("configs/default.toml", {})
PROFILE = SETTINGS.profiles["balanced"]


@pytest.fixture(scope="module")
def world() -> World:
    return World(catalog=SETTINGS.catalog, seed=3)


@pytest.fixture(scope="module")
def steps(world: World) -> list[Step]:
    return build_steps(world, 850, 3, PROFILE)


def test_the_stacker_starts_at_its_prior_and_learns_the_weights_of_the_outcomes() -> None:
    stacker = Stacker(prior=(0.0, 1.0, 0.0), strength=1.0, decay=1.0)
    assert stacker.weights.tolist() == [0.0, 1.0, 0.0]
    rng = np.random.default_rng(0)
    for _ in range(3000):
        x = np.array([1.0, *rng.uniform(0.0, 1.0, 2)])
        stacker.learn_one(x, 0.1 + 0.2 * x[1] + 0.6 * x[2])
    assert stacker.weights == pytest.approx([0.1, 0.2, 0.6], abs=0.01)
    assert stacker.predict(np.array([[1.0, 0.5, 0.5]]))[0] == pytest.approx(0.5, abs=0.01)


def test_the_stacker_forgets_outcomes_older_than_its_decay_window() -> None:
    stacker = Stacker(prior=(0.0, 1.0), strength=1.0, decay=0.99)
    for _ in range(2000):
        stacker.learn_one(np.array([1.0, 0.5]), 0.2)
    for _ in range(2000):
        stacker.learn_one(np.array([1.0, 0.5]), 0.8)
    assert stacker.predict(np.array([[1.0, 0.5]]))[0] == pytest.approx(0.8, abs=0.01)


def test_the_vw_only_stack_reproduces_the_services_squarecb(world: World,
                                                             steps: list[Step]) -> None:
    # The same VW bandit learning the same outcomes: with the stacker held at "VW alone", the
    # stack's SquareCB gives the service's probabilities.
    catalog = world.catalog
    service = PolicyContender("service", catalog, SETTINGS.bandit)
    stack = StackedContender("stack", catalog, SETTINGS.bandit, river=False, batch=None)
    stack.stackers[False].strength = 1e12  # keep VW's scores as they are
    same_draw = 0
    try:
        for step in steps[:150]:
            expected = service.policy.probabilities(step.features, catalog, step.allowed)
            position, propensity = stack.choose(step, seed=3)
            assert propensity == pytest.approx(expected[position], abs=1e-6)
            same_draw += position == service.choose(step, seed=3)[0]
            outcome, reward = _outcome(world, step, catalog.actions[step.allowed[position]], 3,
                                       PROFILE)
            service.learn(step, position, expected[position], outcome, reward)
            stack.learn(step, position, propensity, outcome, reward)
    finally:
        service.close()
        stack.close()
    assert same_draw == 150  # common random numbers: the same seeded uniform per step


class _Recorder:
    """A contender that counts what it learned and when the history was folded."""

    name = "recorder"

    def __init__(self) -> None:
        self.learned: list[tuple[int, float]] = []
        self.folded_after: int | None = None

    def choose(self, step: Step, seed: int) -> tuple[int, float]:
        return 0, 1.0

    def learn(self, step: Step, position: int, propensity: float, outcome: SimOutcome,
              reward: float) -> None:
        self.learned.append((step.index, propensity))

    def history_folded(self) -> None:
        self.folded_after = len(self.learned)


def test_a_warm_history_is_logged_uniformly_and_folded_before_the_scored_run(
        world: World, steps: list[Step]) -> None:
    recorder = _Recorder()
    chosen, _ = run_contender(recorder, world, steps[100:130], 3, PROFILE, history=steps[:100])
    assert len(chosen) == 30
    assert recorder.folded_after == 100
    assert [i for i, _ in recorder.learned] == list(range(130))
    assert [p for _, p in recorder.learned[:100]] == [1.0 / len(s.allowed) for s in steps[:100]]


@pytest.mark.slow
def test_own_log_batch_models_retrain_each_time_the_log_doubles(world: World,
                                                                steps: list[Step]) -> None:
    catalog: Catalog = world.catalog
    batch = OwnLogBatch(catalog, PROFILE, first=400, search_budget_s=0.0)
    assert batch.predicted(steps[0]) is None
    rng = np.random.default_rng(1)
    retrained = []
    for step in steps[:820]:
        position = int(rng.integers(len(step.allowed)))
        outcome, reward = _outcome(world, step, catalog.actions[step.allowed[position]], 3,
                                   PROFILE)
        if batch.learn(step, position, 1.0 / len(step.allowed), outcome, reward):
            retrained.append(step.index + 1)
    assert retrained == [400, 800]
    predicted = batch.predicted(steps[820])
    assert predicted is not None
    assert predicted.shape == (len(steps[820].allowed),)
    assert np.all((predicted >= 0.0) & (predicted <= 1.0))
    batch.train_if_stale()  # 20 decisions since the last training
    assert batch.trainings == 3
    batch.train_if_stale()
    assert batch.trainings == 3


def test_a_stack_learns_logged_decisions_it_did_not_make(world: World,
                                                         steps: list[Step]) -> None:
    catalog = world.catalog
    stack = StackedContender("stack", catalog, SETTINGS.bandit, river=True, batch=None)
    try:
        for step in steps[:20]:  # a uniform logger's history, as --warm folds it
            outcome, reward = _outcome(world, step, catalog.actions[step.allowed[0]], 3, PROFILE)
            stack.learn(step, 0, 1.0 / len(step.allowed), outcome, reward)
        assert stack.bandit.learned == 20
        assert stack.stackers[False].weights.tolist() != [0.0, 1.0, 0.0]
    finally:
        stack.close()
