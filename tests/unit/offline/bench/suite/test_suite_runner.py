"""Mechanics of the suite runner: common random numbers, delays, references, determinism."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest

from learners.catalog import Catalog
from learners.context import DecisionContext, Task
from offline.bench.suite.baselines import EARLY, draw_reward, references
from offline.bench.suite.environment import Kind, SuiteStep
from offline.bench.suite.router_contender import RouterVariant, router_variants
from offline.bench.suite.runner import run_contender, run_job
from offline.bench.suite.worlds import SyntheticWorld, delayed, make_catalog
from router.settings import load_settings


class ListEnvironment:
    """An environment over a fixed list of expected rewards and delays; Bernoulli rewards."""

    def __init__(self, expected: list[list[float]], delays: list[int] | None = None) -> None:
        self.table = np.asarray(expected, dtype=np.float64)
        self.delays = delays or [0] * len(expected)
        self._catalog = make_catalog([1.0] * self.table.shape[1], [5.0] * self.table.shape[1])

    @property
    def name(self) -> str:
        return "list"

    @property
    def kind(self) -> Kind:
        return "world"

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def steps(self, seed: int) -> Iterator[SuiteStep]:
        context = DecisionContext(task=Task(type="backend", language="python",
                                            description="Implement a parser."))
        for i, row in enumerate(self.table):
            yield SuiteStep(index=i, context=context, expected=row, delay=self.delays[i])

    def reward(self, step: SuiteStep, action: int, rng: np.random.Generator) -> float:
        return 1.0 if rng.random() < step.expected[action] else 0.0

    def skyline(self, seed: int) -> float | None:
        return None


class Recorder:
    """Chooses a scripted action per step and records what it is told, in order."""

    def __init__(self, actions: list[int], name: str = "recorder") -> None:
        self.name = name
        self.actions = actions
        self.events: list[tuple[str, int]] = []
        self.rewards: dict[int, float] = {}

    def choose(self, step: SuiteStep) -> int:
        self.events.append(("choose", step.index))
        return self.actions[step.index]

    def learn(self, step: SuiteStep, reward: float) -> None:
        self.events.append(("learn", step.index))
        self.rewards[step.index] = reward

    def close(self) -> None:
        return None


def test_contenders_taking_the_same_action_see_the_same_reward() -> None:
    env = ListEnvironment([[0.5, 0.5, 0.5]] * 400)
    steps = list(env.steps(3))
    first, second = Recorder([i % 3 for i in range(400)]), Recorder([0] * 400)
    run_contender(first, env, steps, seed=3)
    run_contender(second, env, steps, seed=3)
    same = [i for i in range(399) if first.actions[i] == second.actions[i]]
    other = [i for i in range(399) if first.actions[i] != second.actions[i]]
    assert all(first.rewards[i] == second.rewards[i] for i in same)
    # Other actions get their own draws: with p = 0.5 they disagree about half the time.
    disagree = np.mean([first.rewards[i] != second.rewards[i] for i in other])
    assert 0.35 < disagree < 0.65
    # Another seed gives other draws for the same action.
    third = Recorder([0] * 400)
    run_contender(third, env, steps, seed=4)
    assert any(third.rewards[i] != second.rewards[i] for i in range(399))


def test_draw_reward_does_not_depend_on_what_was_drawn_before() -> None:
    env = ListEnvironment([[0.3, 0.6]] * 50)
    steps = list(env.steps(0))
    forward = [draw_reward(env, s, 1, 9) for s in steps]
    backward = [draw_reward(env, s, 1, 9) for s in reversed(steps)][::-1]
    assert forward == backward


def test_an_outcome_arrives_after_its_delay_and_outcomes_due_together_in_decision_order(
) -> None:
    env = ListEnvironment([[1.0, 0.0]] * 5, delays=[2, 0, 0, 0, 0])
    recorder = Recorder([0] * 5)
    run_contender(recorder, env, list(env.steps(1)), seed=1)
    assert recorder.events == [
        ("choose", 0), ("choose", 1), ("learn", 1), ("choose", 2), ("learn", 0), ("learn", 2),
        ("choose", 3), ("learn", 3), ("choose", 4)]


def test_references_are_uniform_best_column_and_row_maxima() -> None:
    table = np.array([[0.2, 0.8, 0.5], [0.9, 0.1, 0.5], [0.4, 0.6, 0.5], [1.0, 0.0, 0.5]])
    refs = references(table)
    assert refs.uniform == pytest.approx(table.mean())
    assert refs.best_fixed == pytest.approx(0.625)  # column 0: (0.2 + 0.9 + 0.4 + 1.0) / 4
    assert refs.oracle == pytest.approx((0.8 + 0.9 + 0.6 + 1.0) / 4)
    assert refs.best_fixed_late == pytest.approx(0.7)  # last two rows: column 0
    assert refs.ceiling == refs.oracle
    assert references(table, skyline=0.7).ceiling == 0.7


def _small_delayed() -> tuple[SyntheticWorld, list[RouterVariant]]:
    """The delayed world over EARLY steps, and the configured router."""
    settings = load_settings(None, {})
    world = delayed()
    small = SyntheticWorld(name="small-delayed", catalog=world.catalog,
                           structure=world.structure, steps=EARLY, delay=world.delay)
    return small, router_variants(settings.bandit, settings.drift, [])


def test_a_job_is_a_function_of_the_seed() -> None:
    small, variants = _small_delayed()
    first, again = run_job(small, 5, variants), run_job(small, 5, variants)
    other = run_job(small, 6, variants)
    assert set(first.runs) == {"router", "plain-vw", "thompson"}
    for name, run in first.runs.items():
        assert run.curve == again.runs[name].curve
        assert run.mean == again.runs[name].mean
    assert first.references == again.references
    assert first.references != other.references
    assert first.runs["router"].curve != other.runs["router"].curve


def test_a_scale_above_one_lengthens_generated_streams_only() -> None:
    small, variants = _small_delayed()
    assert run_job(small, 5, variants, scale=1.5).steps == round(EARLY * 1.5)
    fixed = ListEnvironment([[0.2, 0.8]] * 50)  # a fixed list (like a dataset): no lengthening
    assert run_job(fixed, 5, variants, scale=3.0).steps == 50


def test_routers_are_also_scored_on_their_most_probable_actions() -> None:
    small, variants = _small_delayed()
    settings = load_settings(None, {})
    # γ scale 1e9: once an outcome is learned SquareCB puts nearly everything on the lowest
    # cost (actions tied with it share 1/K each), so draws and most probable actions agree
    # on nearly every decision after the first feedback
    greedy_only = router_variants(settings.bandit, settings.drift, ["greedy=vw:squarecb=1e9"])
    job = run_job(small, 5, [*variants, greedy_only[1]])
    assert math.isnan(job.runs["plain-vw"].greedy)
    assert math.isnan(job.runs["thompson"].greedy)
    almost = job.runs["greedy"]
    assert abs(almost.greedy_late - almost.late) < 0.005
    assert abs(almost.greedy - almost.mean) < 0.05  # the first decisions are drawn uniformly
    router = job.runs["router"]
    refs = job.references
    assert refs.uniform < router.greedy <= refs.oracle
    assert router.greedy != router.mean  # the default explores: its draws differ
