"""The suite's simulated worlds: valid rewards, realistic requests, the structures they claim."""

from __future__ import annotations

import numpy as np
import pytest

from offline.bench.suite.contexts import RARE_FEATURE
from offline.bench.suite.simulator_env import SimulatorEnvironment
from offline.bench.suite.worlds import (
    SyntheticWorld,
    abrupt_drift,
    anticorrelated,
    delayed,
    environments,
    many_actions,
    rare_feature,
    sparse,
)


def test_there_are_at_least_ten_worlds_with_unique_names() -> None:
    envs = environments()
    names = [env.name for env in envs]
    assert len(names) >= 10
    assert len(set(names)) == len(names)
    assert all(env.kind == "world" for env in envs)
    sizes = {len(env.catalog) for env in envs}
    assert min(sizes) == 2
    assert max(sizes) == 300


@pytest.mark.parametrize("world", [w for w in environments() if isinstance(w, SyntheticWorld)],
                         ids=lambda w: w.name)
def test_a_world_gives_valid_steps_and_the_same_steps_for_the_same_seed(
        world: SyntheticWorld) -> None:
    steps, table = world.expected(1)
    assert len(steps) == world.n_steps
    assert table.shape == (world.n_steps, len(world.catalog))
    assert ((table >= 0.0) & (table <= 1.0)).all()
    again, _ = world.expected(1)
    assert [s.context for s in steps[:50]] == [s.context for s in again[:50]]
    other, _ = world.expected(2)
    assert [s.context for s in steps[:50]] != [s.context for s in other[:50]]
    rng = np.random.default_rng(0)
    assert {world.reward(steps[0], a, rng) for a in range(len(world.catalog))} <= {0.0, 1.0}


def test_requests_vary_like_a_real_callers() -> None:
    steps, _ = anticorrelated().expected(3)
    contexts = [s.context for s in steps]
    assert len({c.task.type for c in contexts}) >= 6
    assert len({c.task.language for c in contexts}) >= 5
    assert len({c.task.description for c in contexts}) > len(contexts) // 4
    assert len({c.features["repo_tier"] for c in contexts}) == 3
    assert len({c.features["diff_lines"] for c in contexts}) > 100


def test_anticorrelated_world_rewards_cheaper_models() -> None:
    world = anticorrelated()
    _, table = world.expected(1)
    price = np.array([a.model.output_price_per_mtok for a in world.catalog.actions])
    assert np.corrcoef(price, table.mean(axis=0))[0, 1] < -0.8


def test_the_rare_flag_is_rare_and_flips_the_best_model() -> None:
    world = rare_feature()
    steps, table = world.expected(1)
    flagged = np.array([RARE_FEATURE in s.context.features for s in steps])
    assert 0.03 < flagged.mean() < 0.07
    models = [a.model.name for a in world.catalog.actions]
    best_usual = models[int(table[~flagged].mean(axis=0).argmax())]
    best_flagged = models[int(table[flagged].mean(axis=0).argmax())]
    assert best_usual != best_flagged


def test_sparse_world_succeeds_rarely() -> None:
    _, table = sparse().expected(1)
    assert 0.02 < table.mean() < 0.08


def test_abrupt_drift_changes_the_best_action_at_the_middle() -> None:
    _, table = abrupt_drift().expected(1)
    half = len(table) // 2
    assert table[:half].mean(axis=0).argmax() != table[half:].mean(axis=0).argmax()


def test_delayed_world_delays_feedback_by_50_to_200_decisions() -> None:
    steps, _ = delayed().expected(1)
    delays = np.array([s.delay for s in steps])
    assert delays.min() >= 50
    assert delays.max() <= 200
    assert delays.std() > 20


def test_300_action_world_crosses_models_temperatures_and_templates() -> None:
    catalog = many_actions().catalog
    assert (len(catalog.models), len(catalog.temperatures), len(catalog.templates)) == (20, 3, 5)


def test_simulator_environment_realises_rewards_around_the_expected_ones() -> None:
    env = SimulatorEnvironment(steps=300)
    steps = list(env.steps(1))
    action = 7
    realised = [env.reward(s, action, np.random.default_rng([1, s.index])) for s in steps]
    expected = np.mean([s.expected[action] for s in steps])
    assert abs(np.mean(realised) - expected) < 0.05
    assert all(0.0 <= r <= 1.0 for r in realised)
    assert not any(t.languages for t in env.catalog.templates)


def test_simulator_drift_lowers_only_the_drifting_models_rewards_from_its_step() -> None:
    steady = [s.expected for s in SimulatorEnvironment(steps=200).steps(1)]
    env = SimulatorEnvironment(steps=200, drift_model="code-specialist", drift_at=100)
    drifted = [s.expected for s in env.steps(1)]
    drifting = np.array([a.model.name == "code-specialist" for a in env.catalog.actions])
    assert np.array_equal(np.vstack(steady[:100]), np.vstack(drifted[:100]))
    change = np.vstack(drifted[100:]) - np.vstack(steady[100:])
    assert np.all(change[:, ~drifting] == 0.0)
    assert change[:, drifting].mean() < -0.1


def test_a_lengthened_world_keeps_its_structure_and_drifts_at_the_same_fraction() -> None:
    world = abrupt_drift()
    longer = world.lengthened(2.5)
    steps, table = longer.expected(1)
    assert len(steps) == round(world.n_steps * 2.5)
    assert (longer.name, longer.catalog) == (world.name, world.catalog)
    # the best model collapses at the middle of the longer stream, as in the original
    half = len(table) // 2
    before, after = table[half - 200:half].mean(axis=0), table[half:half + 200].mean(axis=0)
    assert before.argmax() != after.argmax()
    simulator = SimulatorEnvironment(steps=100, drift_model="code-specialist", drift_at=40)
    assert simulator.lengthened(3).n_steps == 300
    assert len(list(simulator.lengthened(3).steps(1))) == 300
