"""Reference policies that need no learning: single models, the oracle, uniform choice, and the
zero-router hull (the best cost–accuracy trade-offs reachable by mixing single models without
looking at the prompt)."""

from __future__ import annotations

import itertools
import math

import msgspec
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Point(msgspec.Struct, frozen=True):
    """Mean cost per prompt (USD) and accuracy (mean score) of a policy."""

    cost: float
    accuracy: float


def rewards(scores: FloatArray, costs: FloatArray, lam: float) -> FloatArray:
    """Reward of every (prompt, model): score − λ·cost."""
    return scores - lam * costs


def single_model_points(scores: FloatArray, costs: FloatArray) -> list[Point]:
    """(mean cost, accuracy) of always choosing each model."""
    return [Point(cost=float(c), accuracy=float(a))
            for c, a in zip(costs.mean(axis=0), scores.mean(axis=0), strict=True)]


def best_single(scores: FloatArray, costs: FloatArray, lam: float) -> int:
    """The model with the highest mean reward (ties: the cheaper, then the first)."""
    mean_reward = rewards(scores, costs, lam).mean(axis=0)
    mean_cost = costs.mean(axis=0)
    return int(np.lexsort((np.arange(len(mean_cost)), mean_cost, -mean_reward))[0])


def oracle_choices(scores: FloatArray, costs: FloatArray, lam: float) -> IntArray:
    """Per prompt, the model with the highest reward (ties: the cheaper, then the first)."""
    reward = rewards(scores, costs, lam)
    best = reward.max(axis=1, keepdims=True)
    # Among the (near-)best, the cheapest: with λ = 0 the oracle does not pay for a tie.
    tied_costs = np.where(np.isclose(reward, best, rtol=0.0, atol=1e-12), costs, np.inf)
    choices: IntArray = np.argmin(tied_costs, axis=1).astype(np.int64)
    return choices


def choice_point(scores: FloatArray, costs: FloatArray, choices: IntArray) -> Point:
    """(mean cost, accuracy) of choosing ``choices[i]`` for prompt ``i``."""
    rows = np.arange(len(choices))
    return Point(cost=float(costs[rows, choices].mean()),
                 accuracy=float(scores[rows, choices].mean()))


def uniform_point(scores: FloatArray, costs: FloatArray) -> Point:
    """Expected (mean cost, accuracy) of a uniformly random model per prompt."""
    return Point(cost=float(costs.mean()), accuracy=float(scores.mean()))


def zero_router_hull(points: list[Point]) -> list[Point]:
    """The upper-left frontier of the convex hull of ``points``, from the cheapest point to the
    most accurate one: accuracy increasing and concave in cost. A random mix of two single
    models reaches any point on the segment between them, so this is the best accuracy a
    prompt-blind router can buy at each cost."""
    if not points:
        raise ValueError("the hull needs at least one point")
    ordered = sorted(points, key=lambda p: (p.cost, -p.accuracy))
    hull: list[Point] = []
    for point in ordered:
        if hull and point.accuracy <= hull[-1].accuracy:
            continue  # costs at least as much as a hull point and is no more accurate
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], point) >= 0.0:
            hull.pop()  # hull[-1] lies on or below the segment hull[-2] → point
        hull.append(point)
    return hull


def _cross(a: Point, b: Point, c: Point) -> float:
    """> 0 when ``b`` is below the line from ``a`` to ``c`` (a left turn a → b → c)."""
    return (b.cost - a.cost) * (c.accuracy - a.accuracy) - (b.accuracy - a.accuracy) * (
        c.cost - a.cost
    )


def hull_accuracy(hull: list[Point], cost: float) -> float | None:
    """Accuracy of the zero-router hull at ``cost``: linear between hull points, the most
    accurate point's accuracy beyond it, ``None`` below the cheapest model's cost (with a
    relative tolerance of 1e-9: the same model's mean cost summed in another order)."""
    if cost < hull[0].cost:
        return hull[0].accuracy if math.isclose(cost, hull[0].cost, rel_tol=1e-9) else None
    for left, right in itertools.pairwise(hull):
        if cost <= right.cost:
            share = (cost - left.cost) / (right.cost - left.cost)
            return left.accuracy + share * (right.accuracy - left.accuracy)
    return hull[-1].accuracy
