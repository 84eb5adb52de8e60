"""Evaluate target policies on a log: two passes, one chunk in memory at a time.

Pass 1 (:func:`offline.replay.log.scan_log`) validates the rows, collects the logged actions and
fits the reward model. Pass 2 asks every policy for its probabilities on each chunk and folds
the row terms into one :class:`~offline.replay.estimators.PolicyAccumulator` per policy; the
bootstrap's Poisson counts are drawn once per chunk and shared by all policies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from learners.interval import Interval
from offline.replay.errors import ReplayError
from offline.replay.estimators import (
    BootstrapDraws,
    Diagnostics,
    EstimatorOptions,
    PolicyAccumulator,
    RowSupport,
    TimeBins,
    WeightHistogram,
    importance_weight_variance,
    row_support,
    weight_edges,
)
from offline.replay.log import ActionSpace, FloatArray, LogChunk, LogSource, LogSummary, scan_log
from offline.replay.policies import TargetPolicy, TargetProbabilities
from offline.replay.reward_model import ActionMeanRewardModel, RewardModel

Progress = Callable[[str, int, int | None], None]
TIME_BINS = 40


class PolicyReport(msgspec.Struct, frozen=True):
    """One target policy's estimates and diagnostics (the ``--json`` layout)."""

    n: int
    ess: float
    max_weight: float
    mean_weight: float
    mean_weight_se: float
    clipped_rows: int
    unsupported_share: float
    unsupported_mass: float
    estimates: dict[str, Interval]
    weights: WeightHistogram
    over_time: list[float]


class TimeBin(msgspec.Struct, frozen=True):
    first_row: int
    last_row: int
    start: float | None
    end: float | None
    rows: int
    logged_reward: float


class ReplayReport(msgspec.Struct, frozen=True):
    log: str
    n: int
    actions: int
    logged_actions: int
    logged_reward: float
    reward_model: str
    options: EstimatorOptions
    policies: dict[str, PolicyReport]
    time_bins: list[TimeBin]
    reward_range: tuple[float, float] = (0.0, 1.0)  # what the intervals are clipped to
    # How a policy was evaluated, where it needs saying (e.g. the bandit's progressive
    # validation), by policy name.
    notes: dict[str, str] = {}


def build_space(summary: LogSummary, policies: Sequence[TargetPolicy],
                known: Sequence[str] | None = None) -> ActionSpace:
    """``known`` (a catalog's actions, in order) or the logged actions, then any action a
    policy names that neither holds."""
    ids = list(known) if known is not None else list(summary.action_ids)
    seen = set(ids)
    if known is not None:
        unknown = [a for a in summary.action_ids if a not in seen]
        if unknown:
            raise ReplayError(f"logged actions outside the catalog ({len(unknown)}): "
                              f"{', '.join(unknown[:5])}")
    for policy in policies:
        for action in policy.actions():
            if action not in seen:
                seen.add(action)
                ids.append(action)
    return ActionSpace(ids)


def unsupported_mass(target: TargetProbabilities, chunk: LogChunk,
                     weak: npt.NDArray[np.bool_], weak_chosen: npt.NDArray[np.bool_],
                     known: npt.NDArray[np.bool_]) -> tuple[FloatArray, FloatArray]:
    """The target's (rows × actions) probability the log cannot vouch for, and its
    probability of each logged action that the estimators may weight (see
    :mod:`offline.replay.estimators`, "Support"). ``weak``: (rows × actions) actions the log
    chose fewer than ``min_support`` times; ``known``: rows whose logger vector is known."""
    matrix = target.matrix
    mass: FloatArray = np.where(weak, matrix, 0.0)
    chosen: FloatArray = np.where(weak_chosen, 0.0, target.chosen)
    if chunk.logged is not None:
        logged = chunk.logged
        vouched = np.where(logged <= 0.0, matrix,
                           np.where(weak, np.maximum(matrix - logged, 0.0), 0.0))
        mass = np.where(known[:, None], vouched, mass)
        capped = np.where(weak_chosen, np.minimum(target.chosen, chunk.propensity),
                          target.chosen)
        chosen = np.where(known, capped, chosen)
    return mass, chosen


def reward_bounds(configured: tuple[float, float], summary: LogSummary) -> tuple[float, float]:
    """The reward range the intervals use: ``configured``, widened to any logged reward
    outside it (a log is never contradicted by its own rewards)."""
    return (min(configured[0], summary.min_reward), max(configured[1], summary.max_reward))


def evaluate(source: LogSource, policies: Sequence[TargetPolicy],
             options: EstimatorOptions | None = None, *,
             known_actions: Sequence[str] | None = None,
             reward_model: Callable[[LogSummary, ActionSpace], RewardModel] | None = None,
             progress: Progress | None = None) -> ReplayReport:
    """Estimate the value of each policy in ``policies`` on the decisions in ``source``."""
    options = options or EstimatorOptions()
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise ReplayError(f"two target policies share a name: {names}")
    if not policies:
        raise ReplayError("no target policy to evaluate")

    def tick(stage: str, total: int | None) -> Callable[[int], None]:
        done = 0

        def advance(rows: int) -> None:
            nonlocal done
            done += rows
            if progress is not None:
                progress(stage, done, total)
        return advance

    summary = scan_log(source, tick("validating", None))
    space = build_space(summary, policies, known_actions)
    for policy in policies:
        policy.prepare(space, summary, source)
    bounds = reward_bounds(options.reward_range, summary)
    model = (ActionMeanRewardModel(summary, space, bounds) if reward_model is None
             else reward_model(summary, space))
    # Actions the log chose fewer than min_support times: unsupported on every row.
    weak = np.ones(len(space), dtype=bool)
    for action, logged_count in summary.counts.items():
        position = space.position(action)
        if position is not None and logged_count >= options.min_support:
            weak[position] = False

    any_weak = bool(weak.any())
    edges = weight_edges(1.0 / summary.min_propensity if options.clip is None
                         else min(options.clip, 1.0 / summary.min_propensity))
    accumulators = {p.name: PolicyAccumulator(options, edges, bounds) for p in policies}
    bins = TimeBins(n=summary.n, bins=min(TIME_BINS, summary.n))
    bin_rows = np.zeros(bins.bins, dtype=np.int64)
    bin_reward = np.zeros(bins.bins)
    bin_first = np.full(bins.bins, np.iinfo(np.int64).max)
    bin_last = np.zeros(bins.bins, dtype=np.int64)
    bin_start = np.full(bins.bins, np.inf)
    bin_end = np.full(bins.bins, -np.inf)
    bin_dr = {p.name: np.zeros(bins.bins) for p in policies}
    draws = BootstrapDraws(options.bootstrap, options.seed)
    for policy in policies:
        policy.start()
    advance = tick("estimating", summary.n)
    position = 0
    for raw_chunk in source.chunks():
        chunk = raw_chunk.with_space(space)
        count = len(chunk)
        if count == 0:
            continue
        which = bins.of(position, count)
        np.add.at(bin_rows, which, 1)
        np.add.at(bin_reward, which, chunk.reward)
        np.minimum.at(bin_first, which, chunk.rows)
        np.maximum.at(bin_last, which, chunk.rows)
        if not np.all(np.isnan(chunk.timestamp)):
            stamps = np.nan_to_num(chunk.timestamp, nan=np.inf)
            np.minimum.at(bin_start, which, stamps)
            np.maximum.at(bin_end, which, np.nan_to_num(chunk.timestamp, nan=-np.inf))
        predicted = model.predict(chunk)
        q_logged = predicted[np.arange(count), chunk.action]
        replicate = draws.draw(count)
        known = chunk.known_vectors()
        weak_rows = np.broadcast_to(weak, (count, len(space)))
        weak_chosen = weak[chunk.action]
        for policy in policies:
            target = policy.probabilities(chunk, space)
            dm = np.einsum("ij,ij->i", target.matrix, predicted)
            if chunk.logged is None and not any_weak:
                chosen, support = target.chosen, RowSupport.none(count)
            else:
                mass, chosen = unsupported_mass(target, chunk, weak_rows, weak_chosen, known)
                support = row_support(mass, predicted, bounds)
            weight_variance = None
            if chunk.logged is not None and known.all():
                weight_variance = importance_weight_variance(target.matrix, chunk.logged)
            terms = accumulators[policy.name].add(
                target=chosen, propensity=chunk.propensity, reward=chunk.reward,
                q_logged=q_logged, dm=dm, unsupported=support, draws=replicate,
                weight_variance=weight_variance)
            np.add.at(bin_dr[policy.name], which, terms["dr"])
        position += count
        advance(count)
    if position != summary.n:
        raise ReplayError(f"{source.name}: the second pass read {position} rows, the first "
                          f"{summary.n}; the log changed during the evaluation")
    for policy in policies:
        finish = getattr(policy, "finish", None)
        if finish is not None:
            finish()

    reports: dict[str, PolicyReport] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for policy in policies:
            acc = accumulators[policy.name]
            diag: Diagnostics = acc.diagnostics()
            reports[policy.name] = PolicyReport(
                n=diag.n, ess=diag.ess, max_weight=diag.max_weight, mean_weight=diag.mean_weight,
                mean_weight_se=diag.mean_weight_se,
                clipped_rows=diag.clipped_rows, unsupported_share=diag.unsupported_share,
                unsupported_mass=diag.unsupported_mass, estimates=acc.result(),
                weights=acc.histogram(),
                over_time=[float(v) for v in bin_dr[policy.name] / bin_rows])
        time_bins = [
            TimeBin(first_row=int(bin_first[b]), last_row=int(bin_last[b]),
                    start=None if not math.isfinite(bin_start[b]) else float(bin_start[b]),
                    end=None if not math.isfinite(bin_end[b]) else float(bin_end[b]),
                    rows=int(bin_rows[b]), logged_reward=float(bin_reward[b] / bin_rows[b]))
            for b in range(bins.bins)]
    return ReplayReport(
        log=source.name, n=summary.n, actions=len(space), logged_actions=len(summary.counts),
        logged_reward=summary.reward_total / summary.n,
        reward_model=getattr(model, "name", type(model).__name__), options=options,
        policies=reports, time_bins=time_bins, reward_range=bounds,
        notes={p.name: str(getattr(p, "description", "")) for p in policies
               if getattr(p, "description", "")})
