"""The simulated world: seeded, valid probabilities, a correct oracle, drift, a learnable gap."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from learners.catalog import Catalog
from learners.context import CallerContext, Features, Task
from learners.reward import DEFAULT_PROFILES, Verdict
from offline.world import SimTask, World, WorldError

BALANCED = DEFAULT_PROFILES["balanced"]


class _RouteRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The parts of DESIGN.md's route contract the simulator may send."""

    task: Task
    context: CallerContext
    features: Features
    objective: str
    request_id: str | None = None


def _tasks(world: World, n: int, seed: int, start: int = 0) -> list[SimTask]:
    rng = np.random.default_rng(seed)
    return [world.sample_task(rng, step=start + i) for i in range(n)]


def test_same_seed_same_world_and_draws(catalog: Catalog) -> None:
    a, b = World(catalog=catalog, seed=5), World(catalog=catalog, seed=5)
    tasks_a, tasks_b = _tasks(a, 50, seed=1), _tasks(b, 50, seed=1)
    assert tasks_a == tasks_b
    action = catalog.actions[17]
    outcomes_a = [a.outcome(t, action, np.random.default_rng(i)) for i, t in enumerate(tasks_a)]
    outcomes_b = [b.outcome(t, action, np.random.default_rng(i)) for i, t in enumerate(tasks_b)]
    assert outcomes_a == outcomes_b
    assert [a.success_probability(t, action) for t in tasks_a] == [
        b.success_probability(t, action) for t in tasks_b
    ]


def test_different_seed_different_hidden_structure(catalog: Catalog) -> None:
    tasks = _tasks(World(catalog=catalog, seed=1), 30, seed=2)
    one, two = World(catalog=catalog, seed=1), World(catalog=catalog, seed=2)
    action = catalog.actions[3]
    assert [one.success_probability(t, action) for t in tasks] != [
        two.success_probability(t, action) for t in tasks
    ]


def test_own_generator_when_no_rng_given(catalog: Catalog) -> None:
    assert (
        World(catalog=catalog, seed=9).sample_task() == World(catalog=catalog, seed=9).sample_task()
    )


def test_probabilities_and_outcomes_are_valid(catalog: Catalog) -> None:
    world = World(catalog=catalog, seed=3)
    rng = np.random.default_rng(4)
    for task in _tasks(world, 40, seed=3):
        assert 0.0 <= task.complexity <= 10.0
        for action in world.allowed_actions(task):
            probs = world.verdict_probabilities(task, action)
            assert all(0.0 <= p <= 1.0 for p in probs)
            assert sum(probs) == pytest.approx(1.0)
            assert 0.0 <= world.expected_reward(task, action, BALANCED) <= 1.0
        outcome = world.outcome(task, world.allowed_actions(task)[0], rng)
        assert 0.0 <= outcome.quality <= 10.0
        assert outcome.generation_time_s > 0.0
        assert outcome.cost_usd >= 0.0
        assert outcome.tokens > 0
        assert outcome.regenerations >= 0


def test_outcome_frequencies_match_probabilities(catalog: Catalog) -> None:
    world = World(catalog=catalog, seed=3)
    task = _tasks(world, 1, seed=8)[0]
    action = world.allowed_actions(task)[5]
    rng = np.random.default_rng(0)
    approved = [world.outcome(task, action, rng).verdict is Verdict.APPROVED for _ in range(4000)]
    assert np.mean(approved) == pytest.approx(world.success_probability(task, action), abs=0.03)


def test_oracle_is_at_least_every_allowed_action(catalog: Catalog) -> None:
    world = World(catalog=catalog, seed=11)
    for task in _tasks(world, 25, seed=12):
        allowed = world.allowed_actions(task)
        best = world.oracle_action(task, allowed, BALANCED)
        assert best in allowed
        best_reward = world.expected_reward(task, best, BALANCED)
        assert all(world.expected_reward(task, a, BALANCED) <= best_reward for a in allowed)


def test_oracle_needs_an_allowed_action(catalog: Catalog) -> None:
    world = World(catalog=catalog, seed=1)
    with pytest.raises(WorldError):
        world.oracle_action(_tasks(world, 1, seed=1)[0], [], BALANCED)


def test_drift_lowers_the_drifted_model_after_drift_at_only(catalog: Catalog) -> None:
    plain = World(catalog=catalog, seed=4)
    drifted = World(
        catalog=catalog, seed=4, drift_model="code-specialist", drift_at=100, drift_drop=0.35
    )
    tasks = _tasks(plain, 200, seed=5)
    before, after = tasks[:100], tasks[100:]
    useful_drops: list[float] = []
    for action in catalog.actions[::3]:
        for task in before:
            assert drifted.success_probability(task, action) == plain.success_probability(
                task, action
            )
        for task in after:
            old = plain.success_probability(task, action)
            drop = old - drifted.success_probability(task, action)
            if action.model.name != "code-specialist":
                assert drop == 0.0
                continue
            assert drop > 0.0
            if 0.6 <= old <= 0.85:
                useful_drops.append(drop)
    assert len(useful_drops) > 50
    assert float(np.mean(useful_drops)) == pytest.approx(0.35, abs=0.06)


def test_drift_model_must_be_in_the_catalog(catalog: Catalog) -> None:
    with pytest.raises(WorldError):
        World(catalog=catalog, seed=0, drift_model="no-such-model", drift_at=10)


def test_language_templates_only_for_their_languages(catalog: Catalog) -> None:
    world = World(catalog=catalog, seed=2)
    seen: set[str] = set()
    for task in _tasks(world, 300, seed=6):
        seen.add(task.language)
        names = {a.template.name for a in world.allowed_actions(task)}
        assert ("python-typed" in names) == (task.language == "python")
        assert ("ts-strict" in names) == (task.language in {"typescript", "javascript"})
        assert ("sql-focused" in names) == (task.language == "sql")
        assert {"plain", "few-shot", "chain-of-thought"} <= names
    assert {"python", "typescript", "javascript", "go", "java", "rust", "sql"} <= seen


def test_route_bodies_decode_strictly_into_the_contract(catalog: Catalog) -> None:
    world = World(catalog=catalog, seed=7)
    for i, task in enumerate(_tasks(world, 200, seed=7)):
        raw = msgspec.json.encode(task.route_body(request_id=f"r-{i}"))
        body = msgspec.json.decode(raw, type=_RouteRequest, strict=True)
        assert body.task.language == task.language
        assert body.task.type == task.type
        assert body.context.project_id == task.project_id
        assert body.objective == "balanced"
        assert body.request_id == f"r-{i}"
        assert b"complexity" not in raw  # the latent truth stays hidden
        assert b"luck" not in raw


def test_description_reflects_latent_complexity(catalog: Catalog) -> None:
    from learners.features import estimate_complexity

    world = World(catalog=catalog, seed=8)
    tasks = _tasks(world, 1500, seed=8)
    latent = [t.complexity for t in tasks]
    estimated = [estimate_complexity(t.task) for t in tasks]
    assert np.corrcoef(latent, estimated)[0, 1] > 0.5


def test_learning_problem_has_clear_gaps(catalog: Catalog) -> None:
    """Uniform < best fixed action < per-task oracle, by clear margins."""
    world = World(catalog=catalog, seed=0)
    tasks = _tasks(world, 2000, seed=1)
    general = {
        (a.model.name, a.temperature): a
        for a in reversed(catalog.actions)
        if not a.template.languages
    }
    rewards = np.zeros((len(tasks), len(catalog)))
    uniform, oracle = np.zeros(len(tasks)), np.zeros(len(tasks))
    for i, task in enumerate(tasks):
        row = {a.index: world.expected_reward(task, a, BALANCED) for a in catalog.actions}
        allowed = [a.index for a in world.allowed_actions(task)]
        uniform[i] = np.mean([row[j] for j in allowed])
        oracle[i] = max(row[j] for j in allowed)
        for action in catalog.actions:
            fallback = (
                action
                if action.allows_language(task.language)
                else general[(action.model.name, action.temperature)]
            )
            rewards[i, action.index] = row[fallback.index]
    best_fixed = rewards.mean(axis=0).max()
    assert 0.45 <= uniform.mean() <= 0.57
    assert best_fixed - uniform.mean() > 0.1
    assert oracle.mean() - best_fixed > 0.1
    assert 0.76 <= oracle.mean() <= 0.88
