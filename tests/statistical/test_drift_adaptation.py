"""One model's success drops in the middle of a run: traffic moves away from it, and on binary
outcomes the policy's drift detector raises an alarm for that model (and none before the drop).
The policy decides and learns through the decision core (``router bench-suite``'s router
contender).

Measured with the default configuration (window of 200 decisions; "moved away": the model's
share of the window falls below half its share before the drop):

- the simulator (``world-simulator``), ``code-specialist`` drops at decision 1,500: the policy
  had learned to use it on every stream seed 1-8 (share of the window before the drop
  0.33-0.60; seed 3: 0.54), traffic moved away after 200-362 decisions (seed 3: 230), with no
  alarm before the drop on any seed;
- ``world-abrupt-drift`` (rewards 0 or 1), its best model collapses at decision 2,000: on
  stream seeds 1-8 (share before the drop 0.63-0.89) moved away after 200-235 decisions and the
  alarm on that model 29-206 outcomes after the drop (seed 3: 200 and 151).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from learners.drift import DriftAlarm
from offline.bench.suite.environment import Environment, SuiteStep
from offline.bench.suite.router_contender import RouterContender, router_variants
from offline.bench.suite.runner import run_contender
from offline.bench.suite.simulator_env import SimulatorEnvironment
from offline.bench.suite.worlds import abrupt_drift
from router.settings import load_settings

pytestmark = pytest.mark.slow

WINDOW = 200


def _run(env: Environment, steps: Sequence[SuiteStep], seed: int,
         model: str) -> tuple[list[bool], list[DriftAlarm]]:
    """Whether each decision chose ``model``, and the drift alarms raised over the run."""
    settings = load_settings(None, {})
    router = RouterContender(router_variants(settings.bandit, settings.drift, [])[0],
                             env.catalog, env.name, seed)
    try:
        chosen = run_contender(router, env, steps, seed)
        alarms = list(router.policy.raised_alarms)
    finally:
        router.close()
    return [env.catalog.actions[a].model.name == model for a in chosen], alarms


def _moved_away(used: Sequence[bool], at: int) -> tuple[float, int | None]:
    """The model's share of the ``WINDOW`` decisions before ``at``, and the decisions after
    ``at`` until its share of the trailing window falls below half of that (None: never)."""
    share = np.asarray(used, dtype=np.float64)
    before = float(share[at - WINDOW:at].mean())
    for end in range(at + WINDOW, len(share) + 1):
        if share[end - WINDOW:end].mean() < before / 2.0:
            return before, end - at
    return before, None


def test_traffic_moves_away_from_a_drifting_model_on_the_simulator() -> None:
    drift_at, seed = 1500, 3
    env = SimulatorEnvironment(steps=drift_at + 1300, drift_model="code-specialist",
                               drift_at=drift_at)
    used, alarms = _run(env, list(env.steps(seed)), seed, "code-specialist")
    before, moved = _moved_away(used, drift_at)
    assert before > 0.3, "the scenario needs a model with traffic to lose"
    assert moved is not None
    assert moved <= 600
    assert not [a for a in alarms if a.detected_at <= drift_at]  # no false alarm before


def test_a_drift_alarm_fires_and_traffic_moves_away_when_the_best_model_collapses() -> None:
    world, seed = abrupt_drift(), 3
    steps, _ = world.expected(seed)
    drift_at = len(steps) // 2  # the world's drop
    used, alarms = _run(world, steps, seed, "model-00")
    before, moved = _moved_away(used, drift_at)
    assert before > 0.5, "the collapsing model is the one the policy had learned to use"
    assert moved is not None
    assert moved <= 400
    assert not [a for a in alarms if a.detected_at <= drift_at]  # no false alarm before
    fired = [a for a in alarms if a.model == "model-00"]
    assert fired, alarms
    assert drift_at < fired[0].detected_at <= drift_at + 300
