"""Seeded simulations: replay's estimators are unbiased and their intervals cover (issue 5,
item 7).

Ground truth comes from the simulator's world: a pool of tasks, each with every action's true
success probability. The logged reward is the success indicator, so a policy's true value on
the pool is exact: the mean over tasks of Σ_a π(a|x) P(success | x, a). Each repetition draws
tasks from the pool, actions from a non-uniform logging policy and rewards from the truth, and
evaluates a different target policy.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pytest

from learners.catalog import Catalog
from offline.replay.estimators import EstimatorOptions
from offline.replay.evaluate import evaluate
from offline.replay.log import LogChunk
from offline.world import World
from tests.support import MatrixPolicy
from tests.unit.offline.conftest import load_default_catalog

pytestmark = pytest.mark.slow

POOL = 6000
ROWS = 1500
REPETITIONS = 300


@dataclass(frozen=True)
class Truth:
    actions: tuple[str, ...]
    success: np.ndarray  # (pool × actions) true P(success)
    logging: np.ndarray  # (pool × actions) logging probabilities
    target: np.ndarray  # (pool × actions) target probabilities

    def value(self, policy: np.ndarray) -> float:
        return float(np.mean(np.sum(policy * self.success, axis=1)))


def small_catalog() -> Catalog:
    full = load_default_catalog()
    general = [t for t in full.templates if not t.languages][:3]
    return Catalog(models=list(full.models[:4]), templates=general, temperatures=[0.2, 0.8])


@pytest.fixture(scope="module")
def truth() -> Truth:
    catalog = small_catalog()
    world = World(catalog=catalog, seed=5)
    rng = np.random.default_rng(5)
    actions = catalog.actions
    success = np.empty((POOL, len(actions)))
    complexity = np.empty(POOL)
    for i in range(POOL):
        task = world.sample_task(rng, step=i)
        complexity[i] = task.complexity
        success[i] = [world.success_probability(task, a) for a in actions]
    # Logging: half a softmax that prefers cheap models on easy tasks, half uniform (an
    # ε-greedy-like logger: weights stay bounded, so the CLT-based intervals should hold).
    price = np.log1p([a.model.output_price_per_mtok for a in actions])
    score = -np.outer(6.0 - complexity, price) / 3.0
    softmax = np.exp(score - score.max(axis=1, keepdims=True))
    logging = 0.5 * softmax / softmax.sum(axis=1, keepdims=True) + 0.5 / len(actions)
    # Target: 70% on a fixed good action, 30% uniform.
    target = np.full((POOL, len(actions)), 0.3 / len(actions))
    target[:, int(np.argmax(success.mean(axis=0)))] += 0.7
    return Truth(actions=tuple(a.id for a in actions), success=success, logging=logging,
                 target=target)


class ArrayLog:
    """An in-memory log in chunks (the estimators see it exactly as they see a file)."""

    def __init__(self, actions: np.ndarray, propensity: np.ndarray, reward: np.ndarray,
                 chunk_rows: int = 500) -> None:
        self.actions, self.propensity, self.reward = actions, propensity, reward
        self.chunk_rows = chunk_rows

    name = "simulated"

    def chunks(self) -> Iterator[LogChunk]:
        for start in range(0, len(self.actions), self.chunk_rows):
            part = slice(start, start + self.chunk_rows)
            n = len(self.actions[part])
            yield LogChunk(rows=np.arange(start + 1, start + n + 1), actions=self.actions[part],
                           propensity=self.propensity[part], reward=self.reward[part],
                           timestamp=np.full(n, np.nan))


def simulate_log(truth: Truth, seed: int, logging: np.ndarray | None = None,
                 rows: int = ROWS) -> tuple[ArrayLog, np.ndarray]:
    """A log of ``rows`` decisions; returns it and the rows' pool indices."""
    rng = np.random.default_rng(seed)
    tasks = rng.integers(0, POOL, rows)
    probs = (truth.logging if logging is None else logging)[tasks]
    cumulative = probs.cumsum(axis=1)
    chosen = np.minimum((cumulative < rng.random((rows, 1))).sum(axis=1), probs.shape[1] - 1)
    reward = (rng.random(rows) < truth.success[tasks, chosen]).astype(np.float64)
    ids = np.asarray(truth.actions, dtype=object)
    return ArrayLog(ids[chosen], probs[np.arange(rows), chosen], reward), tasks


def estimates(truth: Truth, seed: int, options: EstimatorOptions,
              claimed_logging: np.ndarray | None = None) -> dict[str, tuple[float, tuple[
                  float, float], tuple[float, float]]]:
    log, tasks = simulate_log(truth, seed)
    if claimed_logging is not None:
        log.propensity = np.full(len(tasks), 1.0 / len(truth.actions))
    policy = MatrixPolicy("target", truth.target[tasks], truth.actions)
    report = evaluate(log, [policy], options)
    return {name: (e.value, e.ci, e.ci_analytic)
            for name, e in report.policies["target"].estimates.items()}


def test_ips_and_dr_are_unbiased_on_the_simulator(truth: Truth) -> None:
    true_value = truth.value(truth.target)
    logged_value = truth.value(truth.logging)
    assert abs(true_value - logged_value) > 0.03  # the target really differs from the logger
    options = EstimatorOptions(bootstrap=0)
    runs = [estimates(truth, seed, options) for seed in range(REPETITIONS)]
    for name in ("ips", "dr", "snips"):
        values = np.array([run[name][0] for run in runs])
        se = values.std(ddof=1) / np.sqrt(len(values))
        assert abs(values.mean() - true_value) < 4 * se, (name, values.mean(), true_value, se)


def test_wrong_propensities_are_detected_as_bias(truth: Truth) -> None:
    """The same check fails when the log claims uniform propensities it did not use, so the
    unbiasedness test above has the power to fail."""
    true_value = truth.value(truth.target)
    options = EstimatorOptions(bootstrap=0)
    runs = [estimates(truth, seed, options, claimed_logging=truth.logging)
            for seed in range(100)]
    values = np.array([run["ips"][0] for run in runs])
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert abs(values.mean() - true_value) > 4 * se, (values.mean(), true_value, se)


def test_intervals_cover_at_about_their_nominal_rate(truth: Truth) -> None:
    true_value = truth.value(truth.target)
    runs = [estimates(truth, 10_000 + seed, EstimatorOptions(bootstrap=200, level=0.95,
                                                             seed=seed))
            for seed in range(REPETITIONS)]
    # 300 repetitions: the coverage of a true 95% interval is 0.95 ± 0.0126 (one sd).
    for name in ("ips", "snips", "dr"):
        for which in (1, 2):  # bootstrap, analytic
            covered = np.mean([run[name][which][0] <= true_value <= run[name][which][1]
                               for run in runs])
            assert 0.91 <= covered <= 0.985, (name, "bootstrap" if which == 1 else "analytic",
                                              covered)


def test_ips_under_uniform_logging_equals_plain_replay(truth: Truth) -> None:
    """Uniform logging, deterministic target: SNIPS is exactly the replay method's mean reward
    on the rows where the logged action is the target's, and IPS is that sum times K / n."""
    k = len(truth.actions)
    uniform = np.full_like(truth.logging, 1.0 / k)
    greedy = np.zeros_like(truth.target)
    greedy[np.arange(POOL), np.argmax(truth.success * (1.0 + 0.1 * np.arange(k)), axis=1)] = 1.0
    values = []
    for seed in range(60):
        log, tasks = simulate_log(truth, seed, logging=uniform)
        target = greedy[tasks]
        report = evaluate(log, [MatrixPolicy("greedy", target, truth.actions)],
                          EstimatorOptions(bootstrap=0))
        position = {a: i for i, a in enumerate(truth.actions)}
        logged = np.array([position[a] for a in log.actions])
        match = target[np.arange(len(tasks)), logged] == 1.0
        replay_mean = log.reward[match].mean()
        result = report.policies["greedy"].estimates
        assert result["snips"].value == pytest.approx(replay_mean, abs=1e-12)
        assert result["ips"].value == pytest.approx(k * log.reward[match].sum() / len(tasks),
                                                    abs=1e-12)
        values.append(result["ips"].value)
    estimates_ = np.array(values)
    se = estimates_.std(ddof=1) / np.sqrt(len(estimates_))
    assert abs(estimates_.mean() - truth.value(greedy)) < 4 * se
