"""Online replays of the recorded LLM outcomes in ``../shared/data/llmrouter``.

Each environment is one subset of the prompts (all 6,108, or the 762 code prompts of ``mbpp``
and ``human_eval``) at one cost weight λ. A stream is :data:`PASSES` passes over the subset,
every prompt once per pass, each pass in its own order drawn from the seed. The catalog is the
data's 9 models with their real prices (one temperature, one template). Choosing model ``m`` on
prompt ``p`` yields the recorded score, less the weighted cost:

    reward = clip(score[p, m] − λ · cost[p, m] / cost_scale, 0, 1)

where ``cost`` is the estimated USD cost of :func:`offline.bench.realdata.data.estimate_costs`
(prompt length and the models' prices; the data has no token counts) and ``cost_scale`` the
highest mean cost of a single model on the subset, so that λ is the share of a unit reward the
priciest model's average call costs. Rewards are deterministic: ``expected`` holds every model's
recorded reward and :meth:`RealOutcomeEnvironment.reward` returns it. There is no skyline: the
oracle per prompt is the reference.

The request is what a real caller would send: the task family as task type (``mbpp``,
``gsm8k``, ...), ``python`` as language for the code families and ``text`` otherwise, the prompt
as description. :func:`summarise_pass` gives what the suite's targets compare on the second
pass: accuracy and cost of a run's choices, the best single model and the zero-router hull at
the same cost.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import msgspec
import numpy as np
import numpy.typing as npt

from learners.catalog import Catalog
from learners.context import MAX_DESCRIPTION_CHARS, DecisionContext, Task
from offline.bench.realdata.data import (
    CODE_TASKS,
    RealData,
    Subset,
    build_catalog,
    default_data_dir,
    estimate_costs,
    load_real_data,
)
from offline.bench.realdata.frontier import hull_accuracy, single_model_points, zero_router_hull
from offline.bench.suite.environment import Environment, FloatArray, Kind, SuiteStep

IntArray = npt.NDArray[np.int64]

PASSES = 2
# λ = 0: accuracy alone. λ = 0.2 and 0.5 change the best single model on both subsets (all:
# nemotron-51b → llama-3.1-8b → gemma-2-9b; code: nemotron-49b → qwen2.5-7b) and the oracle.
COST_WEIGHTS = (0.0, 0.2, 0.5)
SUBSETS: tuple[Subset, ...] = ("all", "code")
CODE_LANGUAGE = "python"
TEXT_LANGUAGE = "text"


def request_context(prompt: str, family: str) -> DecisionContext:
    """The request a caller sends for ``prompt``: its task family as type, the prompt as
    description (cut to the request limit)."""
    language = CODE_LANGUAGE if family in CODE_TASKS else TEXT_LANGUAGE
    description = prompt.replace("\x00", "").strip()[:MAX_DESCRIPTION_CHARS] or "(empty prompt)"
    return DecisionContext(task=Task(type=family, language=language, description=description))


class RealOutcomeEnvironment:
    """One subset of the recorded outcomes at one cost weight (see the module docstring)."""

    def __init__(self, *, data: RealData, subset: Subset, cost_weight: float,
                 contexts: Sequence[DecisionContext] | None = None) -> None:
        if cost_weight < 0.0:
            raise ValueError(f"cost_weight must be >= 0, got {cost_weight}")
        self.data = data
        self.subset = subset
        self.cost_weight = cost_weight
        self.costs: FloatArray = estimate_costs(data)
        self.cost_scale = float(self.costs.mean(axis=0).max())
        self.contexts = (list(contexts) if contexts is not None else
                         [request_context(p, t) for p, t in zip(data.prompts, data.tasks,
                                                                strict=True)])
        if len(self.contexts) != len(data):
            raise ValueError(f"{len(self.contexts)} contexts for {len(data)} prompts")
        rewards = np.clip(data.scores - cost_weight * self.costs / self.cost_scale, 0.0, 1.0)
        rewards.setflags(write=False)
        self.rewards: FloatArray = rewards
        self._catalog = build_catalog(data)

    @property
    def name(self) -> str:
        return f"real-{self.subset}-l{self.cost_weight:g}"

    @property
    def kind(self) -> Kind:
        return "real"

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def order(self, seed: int) -> IntArray:
        """The prompt (row of :attr:`data`) of every step of the stream of ``seed``."""
        rows = [np.random.default_rng([seed, p]).permutation(len(self.data))
                for p in range(PASSES)]
        order: IntArray = np.concatenate(rows).astype(np.int64)
        return order

    def steps(self, seed: int) -> Iterator[SuiteStep]:
        for index, row in enumerate(self.order(seed)):
            yield SuiteStep(index=index, context=self.contexts[row], expected=self.rewards[row])

    def reward(self, step: SuiteStep, action: int, rng: np.random.Generator) -> float:
        """The recorded reward (no draw: ``rng`` is unused)."""
        return float(step.expected[action])

    def skyline(self, seed: int) -> None:
        """None: the oracle (best recorded model per prompt) is the reference."""
        return None


class PassSummary(msgspec.Struct, frozen=True):
    """A run's choices over one pass, and what the targets compare them with.

    ``accuracy`` is the mean recorded score (without the cost term), ``cost_usd`` the mean
    estimated cost per prompt. ``hull_accuracy`` is the zero-router hull at ``cost_usd``: the
    best accuracy a random mix of single models reaches at that cost (None when the run spent
    less than the cheapest model). Every pass holds every prompt once, so the single-model,
    uniform and oracle figures are those of the whole subset.
    """

    environment: str
    seed: int
    pass_index: int
    steps: int
    reward: float
    accuracy: float
    cost_usd: float
    hull_accuracy: float | None
    best_single_model: str  # the highest mean reward (ties: the first)
    best_single_reward: float
    best_single_accuracy: float
    best_single_cost_usd: float
    uniform_reward: float
    oracle_reward: float

    @property
    def accuracy_above_best_single(self) -> float:
        return self.accuracy - self.best_single_accuracy

    @property
    def accuracy_above_hull(self) -> float | None:
        return None if self.hull_accuracy is None else self.accuracy - self.hull_accuracy


def summarise_pass(env: RealOutcomeEnvironment, seed: int, choices: Sequence[int] | IntArray,
                   pass_index: int = PASSES - 1) -> PassSummary:
    """Summarise pass ``pass_index`` (default: the second) of a run on ``env``'s stream of
    ``seed``; ``choices[i]`` is the catalog action chosen at step ``i`` of the whole run."""
    chosen = np.asarray(choices, dtype=np.int64)
    order = env.order(seed)
    if chosen.shape != order.shape:
        raise ValueError(f"{env.name}: {chosen.size} choices for a run of {order.size} steps")
    if not 0 <= pass_index < PASSES:
        raise ValueError(f"pass_index must be in [0, {PASSES}), got {pass_index}")
    if chosen.size and (chosen.min() < 0 or chosen.max() >= len(env.catalog)):
        raise ValueError(f"{env.name}: choices must be catalog indices in [0, {len(env.catalog)})")
    n = len(env.data)
    rows = order[pass_index * n:(pass_index + 1) * n]
    picks = chosen[pass_index * n:(pass_index + 1) * n]
    scores, costs = env.data.scores, env.costs
    hull = zero_router_hull(single_model_points(scores, costs))
    cost = float(costs[rows, picks].mean())
    mean_rewards = env.rewards.mean(axis=0)
    best = int(np.argmax(mean_rewards))
    return PassSummary(
        environment=env.name,
        seed=seed,
        pass_index=pass_index,
        steps=n,
        reward=float(env.rewards[rows, picks].mean()),
        accuracy=float(scores[rows, picks].mean()),
        cost_usd=cost,
        hull_accuracy=hull_accuracy(hull, cost),
        best_single_model=env.data.models[best],
        best_single_reward=float(mean_rewards[best]),
        best_single_accuracy=float(scores[:, best].mean()),
        best_single_cost_usd=float(costs[:, best].mean()),
        uniform_reward=float(env.rewards.mean()),
        oracle_reward=float(env.rewards.max(axis=1).mean()),
    )


def environments(directory: Path | None = None) -> list[Environment]:
    """Every subset at every cost weight, from ``directory`` (default: the shared data
    directory next to the repository). Raises :class:`offline.bench.realdata.data.RealDataError`
    when the data is missing. Every item is a :class:`RealOutcomeEnvironment` (for
    :func:`summarise_pass`)."""
    data = load_real_data(directory if directory is not None else default_data_dir())
    out: list[Environment] = []
    for subset in SUBSETS:
        part = data.subset(subset)
        contexts = [request_context(p, t) for p, t in zip(part.prompts, part.tasks, strict=True)]
        out.extend(RealOutcomeEnvironment(data=part, subset=subset, cost_weight=lam,
                                          contexts=contexts) for lam in COST_WEIGHTS)
    return out
