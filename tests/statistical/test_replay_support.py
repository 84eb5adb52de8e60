"""Replay's intervals stay honest on skewed logs (issue 17, item 6).

A greedy-ish logger (SquareCB-like: nearly all its mass on a few actions it believes best, a
tiny but positive probability on every other) leaves most of an 80-action catalog never
chosen, whether the log holds the logger's whole vectors (the event log) or only the chosen
propensities (a file). The uniform policy's true value is known exactly; its DR interval
must contain it in nearly every seeded log, although the log says nothing about most of the
actions.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from learners.catalog import format_action_id
from offline.replay.estimators import EstimatorOptions
from offline.replay.evaluate import evaluate
from offline.replay.log import LogChunk
from offline.replay.policies import UniformPolicy
from tests.support import MatrixPolicy

pytestmark = pytest.mark.slow

MODELS, TEMPERATURES, TEMPLATES = 8, (0.0, 0.7), 5
CONTEXTS = 4
ROWS = 1500
SEEDS = 20
FAVOURITES = 10  # actions the logger puts 98.5% of its mass on


class VectorLog:
    """An in-memory log that, like the event log, knows the logger's whole vectors."""

    name = "skewed"

    def __init__(self, ids: np.ndarray, chosen: np.ndarray, logging: np.ndarray,
                 reward: np.ndarray, chunk_rows: int = 400, vectors: bool = True) -> None:
        self.ids, self.chosen, self.logging, self.reward = ids, chosen, logging, reward
        self.chunk_rows = chunk_rows
        self.vectors = vectors  # False: only the chosen propensities, like a log file

    def chunks(self) -> Iterator[LogChunk]:
        rows = len(self.chosen)
        for start in range(0, rows, self.chunk_rows):
            part = slice(start, start + self.chunk_rows)
            n = len(self.chosen[part])
            logged = self.logging[part]
            yield LogChunk(
                rows=np.arange(start + 1, start + n + 1), actions=self.ids[self.chosen[part]],
                propensity=logged[np.arange(n), self.chosen[part]], reward=self.reward[part],
                timestamp=np.full(n, np.nan), logged=logged if self.vectors else None,
                allowed=np.ones_like(logged, dtype=bool))


def skewed_world(seed: int) -> tuple[list[str], np.ndarray]:
    """Action ids and the (contexts × actions) true success probabilities: model, temperature
    and template effects plus a model × context interaction."""
    rng = np.random.default_rng(seed)
    ids, logits = [], []
    model_effect = rng.normal(0.0, 0.8, MODELS)
    template_effect = rng.normal(0.0, 0.4, TEMPLATES)
    interaction = rng.normal(0.0, 0.5, (CONTEXTS, MODELS))
    for m in range(MODELS):
        for t, temperature in enumerate(TEMPERATURES):
            for k in range(TEMPLATES):
                ids.append(format_action_id(f"model-{m}", temperature, f"template-{k}"))
                logits.append(model_effect[m] + template_effect[k] - 0.3 * t
                              + interaction[:, m])
    success = 1.0 / (1.0 + np.exp(-np.asarray(logits).T))
    return ids, success


def skewed_log(seed: int, vectors: bool = True) -> tuple[VectorLog, list[str], float]:
    """A log of a greedy-ish logger and the uniform policy's true value."""
    ids, success = skewed_world(seed)
    rng = np.random.default_rng(1000 + seed)
    actions = len(ids)
    contexts = rng.integers(0, CONTEXTS, ROWS)
    # The logger's favourites: the best actions by the truth plus noise, per context.
    logging = np.empty((CONTEXTS, actions))
    for c in range(CONTEXTS):
        believed = success[c] + rng.normal(0.0, 0.05, actions)
        favourites = np.argsort(-believed)[:FAVOURITES]
        logging[c] = 0.015 / (actions - FAVOURITES)
        logging[c, favourites] = 0.985 / FAVOURITES
    per_row = logging[contexts]
    chosen = (per_row.cumsum(axis=1) < rng.random((ROWS, 1))).sum(axis=1)
    chosen = np.minimum(chosen, actions - 1)
    reward = (rng.random(ROWS) < success[contexts, chosen]).astype(np.float64)
    truth = float(success[contexts].mean())  # uniform over the rows' contexts
    log = VectorLog(np.asarray(ids, dtype=object), chosen, per_row, reward, vectors=vectors)
    return log, ids, truth


@pytest.mark.parametrize("vectors", [True, False], ids=["event-log", "file"])
def test_dr_interval_covers_the_uniform_policy_on_skewed_logs(vectors: bool) -> None:
    covered, unsupported, logged_share = 0, [], []
    for seed in range(SEEDS):
        log, ids, truth = skewed_log(seed, vectors)
        report = evaluate(log, [UniformPolicy()], EstimatorOptions(bootstrap=100, seed=seed),
                          known_actions=ids)
        dr = report.policies["uniform"].estimates["dr"]
        low = min(dr.ci[0], dr.ci_analytic[0])
        high = max(dr.ci[1], dr.ci_analytic[1])
        covered += low <= truth <= high
        unsupported.append(report.policies["uniform"].unsupported_mass)
        logged_share.append(report.logged_actions / report.actions)
    # The logs are as skewed as the (66 of 160 actions ever logged) ...
    assert float(np.mean(logged_share)) < 0.5
    # ... the mass the uniform policy puts on never-logged actions is reported ...
    assert min(unsupported) > 0.25
    # ... and the interval, widened over that mass, covers the truth.
    assert covered >= 0.9 * SEEDS, covered


def test_a_policy_on_well_logged_actions_keeps_a_narrow_interval() -> None:
    """The widening applies only where the log is silent: a target that stays on the logger's
    favourites has no unsupported mass and an interval well inside the reward range."""
    log, ids, _ = skewed_log(0)
    first = next(iter(log.chunks()))
    favourite = int(np.argmax(first.logged[0]))  # type: ignore[index]
    matrix = np.zeros((ROWS, len(ids)))
    matrix[:, favourite] = 1.0
    report = evaluate(log, [MatrixPolicy("one", matrix, ids)],
                      EstimatorOptions(bootstrap=0), known_actions=ids)
    result = report.policies["one"]
    assert result.unsupported_mass == 0.0
    low, high = result.estimates["dr"].ci_analytic
    assert high - low < 0.5
