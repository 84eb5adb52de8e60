"""The simple answers every suite contender is measured against.

- uniform, best fixed action in hindsight and oracle: arithmetic on the expected rewards
  (:func:`references`), so they carry no draw noise;
- plain VW: ``--cb_explore_adf --squarecb`` with VW's own defaults over the same context
  features as the router (the shared line of :func:`learners.bandit.vw_format.format_shared`),
  each action one indicator in its own namespace, every context namespace crossed with it;
- a non-contextual Thompson sampler: a Beta posterior per action over rewards in [0, 1].

Rewards follow common random numbers (:func:`draw_reward`): the reward of action ``a`` at step
``i`` of seed ``s`` is drawn with a generator seeded ``(s, i, a)``, so every contender that
takes the same action at the same step sees the same reward.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

import msgspec
import numpy as np
from vowpalwabbit import Workspace

from learners.bandit.sampling import draw_index, seed_from_id
from learners.bandit.vw_format import CONTEXT_NAMESPACES, format_label, format_shared
from learners.features import describe_context
from offline.bench.suite.environment import Environment, FloatArray, SuiteStep

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
STEP = timedelta(minutes=3)
EARLY = 1000  # the "first decisions" figure of the report
ACTION_NAMESPACE = "A"
PLAIN_VW_ARGUMENTS = "--cb_explore_adf --squarecb --quiet " + " ".join(
    f"-q {letter}{ACTION_NAMESPACE}" for letter in sorted(CONTEXT_NAMESPACES.values()))


def decision_time(index: int) -> datetime:
    """When decision ``index`` of a stream is made (every 3 minutes from a Monday 09:00 UTC)."""
    return START + index * STEP


def decision_id(env: str, seed: int, index: int) -> str:
    """The decision id of step ``index``: it seeds the draw of every contender that draws from
    a probability vector, so they share the uniform number of each step."""
    return f"{env}-{seed}-{index}"


def draw_reward(env: Environment, step: SuiteStep, action: int, seed: int) -> float:
    """The realised reward of ``action`` at ``step`` of ``seed`` (common random numbers)."""
    reward = env.reward(step, action, np.random.default_rng([seed, step.index, action]))
    return min(max(float(reward), 0.0), 1.0)


class Contender(Protocol):
    """A learner fed one stream: it chooses on each step and later learns that step's reward
    (possibly after other decisions, see :attr:`SuiteStep.delay`)."""

    name: str

    def choose(self, step: SuiteStep) -> int:
        """The catalog index chosen at ``step``."""
        ...

    def learn(self, step: SuiteStep, reward: float) -> None:
        """The reward of the action chosen at ``step``."""
        ...

    def close(self) -> None: ...


class References(msgspec.Struct, frozen=True):
    """Per-stream reference values, each a mean expected reward (overall, first ``EARLY``
    decisions, second half of the stream)."""

    uniform: float
    best_fixed: float
    oracle: float
    uniform_early: float
    best_fixed_early: float
    oracle_early: float
    uniform_late: float
    best_fixed_late: float
    oracle_late: float
    skyline: float | None = None

    @property
    def ceiling(self) -> float:
        """What a normalised score of 1 means: the skyline where there is one, else the
        oracle."""
        return self.oracle if self.skyline is None else self.skyline


def references(expected: FloatArray, skyline: float | None = None) -> References:
    """Uniform (mean of row means), best fixed action in hindsight (largest column mean) and
    oracle (mean of row maxima) of an expected-reward matrix (steps × actions)."""
    early, late = expected[:EARLY], expected[len(expected) // 2:]
    return References(
        uniform=float(expected.mean()), best_fixed=float(expected.mean(axis=0).max()),
        oracle=float(expected.max(axis=1).mean()),
        uniform_early=float(early.mean()), best_fixed_early=float(early.mean(axis=0).max()),
        oracle_early=float(early.max(axis=1).mean()),
        uniform_late=float(late.mean()), best_fixed_late=float(late.mean(axis=0).max()),
        oracle_late=float(late.max(axis=1).mean()), skyline=skyline)


class PlainVW:
    """VW's ``--cb_explore_adf --squarecb`` with its defaults (:data:`PLAIN_VW_ARGUMENTS`)."""

    name = "plain-vw"

    def __init__(self, env: str, seed: int, n_actions: int) -> None:
        self.env = env
        self.seed = seed
        self._workspace = Workspace(PLAIN_VW_ARGUMENTS)
        self._actions = [f"|{ACTION_NAMESPACE} a{i}" for i in range(n_actions)]
        self._pending: dict[int, tuple[str, int, float]] = {}

    def choose(self, step: SuiteStep) -> int:
        features, _ = describe_context(step.context, decision_time(step.index))
        shared = format_shared(features.namespaces)
        probabilities = self._workspace.predict([shared, *self._actions])
        total = float(sum(probabilities))
        normalised = [float(p) / total for p in probabilities]
        action = draw_index(normalised, seed_from_id(decision_id(self.env, self.seed,
                                                                 step.index)))
        self._pending[step.index] = (shared, action, normalised[action])
        return action

    def learn(self, step: SuiteStep, reward: float) -> None:
        shared, action, propensity = self._pending.pop(step.index)
        lines = [shared, *self._actions]
        lines[1 + action] = f"{format_label(reward, propensity)} {self._actions[action]}"
        self._workspace.learn(lines)

    def close(self) -> None:
        self._workspace.finish()


class ThompsonSampler:
    """Non-contextual Thompson sampling: Beta(1 + Σr, 1 + Σ(1 − r)) per action."""

    name = "thompson"

    def __init__(self, seed: int, n_actions: int) -> None:
        self._alpha = np.ones(n_actions)
        self._beta = np.ones(n_actions)
        self._rng = np.random.default_rng([seed, 313])
        self._pending: dict[int, int] = {}

    def choose(self, step: SuiteStep) -> int:
        action = int(np.argmax(self._rng.beta(self._alpha, self._beta)))
        self._pending[step.index] = action
        return action

    def learn(self, step: SuiteStep, reward: float) -> None:
        action = self._pending.pop(step.index)
        self._alpha[action] += reward
        self._beta[action] += 1.0 - reward

    def close(self) -> None:
        return None
