"""One suite job: every contender over one environment's stream for one seed.

Each contender meets the same steps and, for the same action at the same step, the same reward
(:func:`offline.bench.suite.baselines.draw_reward`). A step's outcome reaches the contender after
``step.delay`` later decisions (0: before the next one); outcomes due together are learned in
decision order. A contender is scored by the expected reward of what it chose, so its score
carries no reward-draw noise.
"""

from __future__ import annotations

import heapq
import itertools
import math
import time
from collections.abc import Callable, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from offline.bench.suite.baselines import (
    EARLY,
    Contender,
    PlainVW,
    References,
    ThompsonSampler,
    draw_reward,
    references,
)
from offline.bench.suite.environment import Environment, Kind, Lengthens, SuiteStep
from offline.bench.suite.router_contender import RouterContender, RouterVariant

CURVE_POINTS = 20  # points of each learning curve (mean expected reward per block of steps)


class ContenderRun(msgspec.Struct, frozen=True):
    """One contender's figures on one stream (means of the expected reward of its choices)."""

    mean: float
    early: float  # first EARLY decisions
    late: float  # second half of the stream
    curve: list[float]
    seconds: float
    # The same over the policy's most probable action at each decision (NaN for contenders
    # that give no probabilities): what the run would score without exploring.
    greedy: float = math.nan
    greedy_late: float = math.nan


class JobResult(msgspec.Struct, frozen=True):
    """Every contender's run on one environment and seed, with the stream's references."""

    env: str
    kind: Kind
    seed: int
    steps: int
    actions: int
    references: References
    runs: dict[str, ContenderRun]


def stream(env: Environment, seed: int, scale: float = 1.0) -> list[SuiteStep]:
    """The steps of ``seed``, the first ``scale`` of them (at least ``EARLY``) when ``scale``
    is below 1. Environments that say their length (``n_steps``) are generated only that far."""
    if scale >= 1.0:
        return list(env.steps(seed))
    length = getattr(env, "n_steps", None)
    if isinstance(length, int):
        limit = min(length, max(EARLY, round(length * scale)))
        return list(itertools.islice(env.steps(seed), limit))
    steps = list(env.steps(seed))
    return steps[:min(len(steps), max(EARLY, round(len(steps) * scale)))]


def run_contender(contender: Contender, env: Environment, steps: Sequence[SuiteStep],
                  seed: int) -> list[int]:
    """Feed ``steps`` to ``contender`` with delayed feedback; the action chosen at each step."""
    due: list[tuple[int, int]] = []  # (decision before which it is learned, step index)
    chosen: list[int] = []
    position = {step.index: row for row, step in enumerate(steps)}
    for step in steps:
        while due and due[0][0] <= step.index:
            _, index = heapq.heappop(due)
            earlier = steps[position[index]]
            contender.learn(earlier, draw_reward(env, earlier, chosen[position[index]], seed))
        chosen.append(contender.choose(step))
        heapq.heappush(due, (step.index + 1 + step.delay, step.index))
    return chosen


def score(steps: Sequence[SuiteStep], chosen: Sequence[int], seconds: float,
          greedy: Sequence[int] | None = None) -> ContenderRun:
    """The figures of a run that chose ``chosen`` on ``steps`` (and whose most probable
    actions were ``greedy``)."""
    values = _expected(steps, chosen)
    blocks = np.array_split(values, min(CURVE_POINTS, len(values)))
    half = len(values) // 2
    greedy_means = math.nan, math.nan
    if greedy is not None:
        greedy_values = _expected(steps, greedy)
        greedy_means = float(greedy_values.mean()), float(greedy_values[half:].mean())
    return ContenderRun(mean=float(values.mean()), early=float(values[:EARLY].mean()),
                        late=float(values[half:].mean()),
                        curve=[round(float(b.mean()), 5) for b in blocks],
                        seconds=round(seconds, 2), greedy=greedy_means[0],
                        greedy_late=greedy_means[1])


def _expected(steps: Sequence[SuiteStep], chosen: Sequence[int]) -> npt.NDArray[np.float64]:
    return np.array([step.expected[a] for step, a in zip(steps, chosen, strict=True)])


def run_job(env: Environment, seed: int, variants: Sequence[RouterVariant], scale: float = 1.0,
            progress: Callable[[str], None] | None = None) -> JobResult:
    """Every router variant, plain VW and the Thompson sampler on ``env``'s stream of
    ``seed`` (``scale`` above 1 lengthens the streams that are generated)."""
    if scale > 1.0 and isinstance(env, Lengthens):
        env = env.lengthened(scale)
    steps = stream(env, seed, scale)
    table = np.vstack([step.expected for step in steps])
    n_actions = len(env.catalog)
    if table.shape[1] != n_actions:
        raise ValueError(f"{env.name}: expected rewards of {table.shape[1]} actions for a "
                         f"catalog of {n_actions}")
    makers: list[Callable[[], Contender]] = [
        *[(lambda v=v: RouterContender(v, env.catalog, env.name, seed)) for v in variants],
        lambda: PlainVW(env.name, seed, n_actions),
        lambda: ThompsonSampler(seed, n_actions),
    ]
    runs: dict[str, ContenderRun] = {}
    for make in makers:
        contender = make()
        started = time.perf_counter()
        try:
            chosen = run_contender(contender, env, steps, seed)
        finally:
            contender.close()
        greedy = contender.greedy if isinstance(contender, RouterContender) else None
        runs[contender.name] = score(steps, chosen, time.perf_counter() - started, greedy)
        if progress is not None:
            progress(f"{env.name} seed {seed} {contender.name}: {runs[contender.name].mean:.4f}")
    return JobResult(env=env.name, kind=env.kind, seed=seed, steps=len(steps),
                     actions=n_actions, references=references(table, env.skyline(seed)),
                     runs=runs)
