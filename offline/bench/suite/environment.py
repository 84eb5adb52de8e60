"""What every learning-suite environment provides: a catalog and a seeded stream of steps.

An environment is a world the router has to learn: simulated code-generation worlds,
classification sets turned into bandit feedback, replays of recorded LLM outcomes. Each step
is one request as the service would receive it (a :class:`DecisionContext`) and the expected
reward of every catalog action for it, which is all a contender needs to be scored:

- the router and the baselines see only ``context`` and, after deciding, a reward drawn by
  :meth:`Environment.reward`;
- ``expected`` gives the oracle (the best action per step), the best fixed action in
  hindsight (the best column mean) and each contender's score (the expected reward of what it
  chose, so that scores carry no draw noise).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, Protocol, runtime_checkable

import msgspec
import numpy as np
import numpy.typing as npt

from learners.catalog import Catalog
from learners.context import DecisionContext

FloatArray = npt.NDArray[np.float64]
Kind = Literal["world", "classification", "real"]


class SuiteStep(msgspec.Struct, frozen=True):
    """One decision point of an environment."""

    index: int  # position in the stream, from 0
    context: DecisionContext
    expected: FloatArray  # expected reward of every catalog action, in catalog order
    # The outcome of this step reaches the learner only after this many later decisions
    # (0: before the next decision).
    delay: int = 0


class Environment(Protocol):
    """A seeded stream of requests and the rewards of the actions taken on them."""

    @property
    def name(self) -> str:
        """Short unique name, e.g. ``world-anticorrelated``, ``cls-wine``, ``real-code-l0.5``."""
        ...

    @property
    def kind(self) -> Kind: ...

    @property
    def catalog(self) -> Catalog:
        """The actions; every step allows all of them."""
        ...

    def steps(self, seed: int) -> Iterator[SuiteStep]:
        """The stream for ``seed``: the same seed gives the same steps."""
        ...

    def reward(self, step: SuiteStep, action: int, rng: np.random.Generator) -> float:
        """The realised reward in [0, 1] of catalog action ``action`` at ``step`` (a draw
        around ``step.expected[action]``, or exactly it where rewards are deterministic)."""
        ...

    def skyline(self, seed: int) -> float | None:
        """Mean reward of a full-information learner over the stream of ``seed`` (the
        reference of classification sets), or None where the oracle's mean is the reference."""
        ...


@runtime_checkable
class Lengthens(Protocol):
    """An environment that generates its stream and can make it longer (the simulated worlds;
    the classification sets and the real-outcome replays have the length of their data)."""

    def lengthened(self, scale: float) -> Environment:
        """The same environment with a stream ``scale`` times as long (a drift still happens at
        the same fraction of the stream)."""
        ...
