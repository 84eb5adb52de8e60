"""The project's own simulator (:class:`offline.world.World`) as one suite environment.

Expected rewards are :meth:`World.expected_reward` under the ``balanced`` profile; a realised
reward is the profile's reward of an outcome drawn by :meth:`World.outcome`. The catalog is the
default configuration's models and temperatures with its templates usable for every language
(the suite allows every action on every step; a language-specific template would be refused by
the service for other languages).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from learners.catalog import Catalog
from learners.context import CallerContext, DecisionContext
from learners.reward import DEFAULT_PROFILES, Outcome, compute_reward
from offline.bench.suite.environment import Kind, SuiteStep
from offline.world import SimTask, World
from router.public import load_settings

WORLD_SEED = 11  # the hidden structure is the same for every seed of the stream


class SimulatorEnvironment:
    """``world-simulator``: :class:`World` with the default catalog, ``balanced`` profile.

    ``drift_model`` and ``drift_at``: from step ``drift_at`` on, that model's success drops
    (:class:`World`'s drift scenario; the suite's own environment has none).
    """

    def __init__(self, *, steps: int = 4000, drift_model: str | None = None,
                 drift_at: int | None = None) -> None:
        self.n_steps = steps
        self._drift_model = drift_model
        self._drift_at = drift_at
        configured = load_settings(None, {}).catalog
        self._catalog = Catalog(
            models=list(configured.models),
            templates=[t for t in configured.templates if not t.languages],
            temperatures=configured.temperatures)
        self._world = World(catalog=self._catalog, seed=WORLD_SEED, drift_model=drift_model,
                            drift_at=drift_at)
        self._profile = DEFAULT_PROFILES["balanced"]
        self._tasks: dict[int, tuple[DecisionContext, SimTask]] = {}

    @property
    def name(self) -> str:
        return "world-simulator"

    @property
    def kind(self) -> Kind:
        return "world"

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def lengthened(self, scale: float) -> SimulatorEnvironment:
        drift_at = None if self._drift_at is None else round(self._drift_at * scale)
        return SimulatorEnvironment(steps=round(self.n_steps * scale),
                                    drift_model=self._drift_model, drift_at=drift_at)

    def steps(self, seed: int) -> Iterator[SuiteStep]:
        """The stream of ``seed``; :meth:`reward` answers for the latest stream generated."""
        rng = np.random.default_rng([seed, 101])
        actions = self._catalog.actions
        self._tasks = {}
        for index in range(self.n_steps):
            task = self._world.sample_task(rng, step=index)
            body = task.route_body()
            context = DecisionContext(
                task=body.task,
                caller=CallerContext(project_id=task.project_id, user_id=task.user_id,
                                     agent=task.agent, rag=task.rag),
                features=body.features)
            self._tasks[index] = (context, task)
            expected = np.array([self._world.expected_reward(task, a, self._profile)
                                 for a in actions])
            yield SuiteStep(index=index, context=context, expected=np.clip(expected, 0.0, 1.0))

    def reward(self, step: SuiteStep, action: int, rng: np.random.Generator) -> float:
        context, task = self._tasks[step.index]
        if context is not step.context:
            raise ValueError("world-simulator: a reward asked for a step of an older stream")
        outcome = self._world.outcome(task, self._catalog.actions[action], rng)
        reward = compute_reward(
            Outcome(outcome.verdict, outcome.quality, outcome.generation_time_s,
                    outcome.cost_usd, outcome.regenerations), self._profile)
        return min(max(reward, 0.0), 1.0)

    def skyline(self, seed: int) -> float | None:
        return None
