"""Figures of a suite run: per-environment spreads over seeds, aggregates, issue 17's Targets.

Pure arithmetic on :class:`~offline.bench.suite.runner.JobResult` records; formatting and plotting
live in :mod:`offline.bench.suite.report`.

- normalised score of a contender on one seed: ``(score − uniform) / (ceiling − uniform)``,
  the ceiling being the environment's skyline where it has one, else the oracle;
- margin of a router: its mean over seeds minus ``max(best fixed, plain VW)``'s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec

from offline.bench.suite.environment import Kind
from offline.bench.suite.runner import JobResult

REFERENCE_ROWS = ("uniform", "best fixed", "oracle")
PLAIN_VW = "plain-vw"
MARGIN_TOLERANCE = 0.01  # Target: router >= max(best fixed, plain VW) - 0.01 on every env
SEED_TOLERANCE = 0.05  # Target: no seed more than this below the mean of the seeds
WORLD_SCORE_TARGET = 0.90
CLASSIFICATION_TARGET = 0.85  # of the full-information learner's progressive accuracy


class Row(msgspec.Struct, frozen=True):
    """One contender (or reference) on one environment, over its seeds."""

    name: str
    mean: float
    min: float
    max: float
    early: float  # first 1,000 decisions, mean over seeds
    late: float  # second half of the stream, mean over seeds
    normalised: float  # mean over seeds (NaN where the ceiling equals uniform)
    seeds: list[float]
    # The most probable action's mean and second-half mean, over seeds (NaN but for routers)
    greedy: float = math.nan
    greedy_late: float = math.nan


class EnvSummary(msgspec.Struct, frozen=True):
    env: str
    kind: Kind
    actions: int
    steps: int
    seeds: list[int]
    rows: list[Row]
    skyline: bool  # normalised against the skyline rather than the oracle
    margins: dict[str, float]  # router name -> margin

    def row(self, name: str) -> Row:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)


class TargetCheck(msgspec.Struct, frozen=True):
    target: str
    figure: str
    met: bool | None  # None: the run holds no environment the target is about


class SuiteSummary(msgspec.Struct, frozen=True):
    envs: list[EnvSummary]
    routers: list[str]
    # kind -> contender -> mean normalised score over that kind's environments
    aggregates: dict[str, dict[str, float]]
    worst_margin: dict[str, tuple[str, float]]  # router -> (environment, margin)
    targets: dict[str, list[TargetCheck]]  # router -> checks


def _normalised(value: float, uniform: float, ceiling: float) -> float:
    span = ceiling - uniform
    return (value - uniform) / span if span > 1e-12 else math.nan


def _row(name: str, means: list[float], early: list[float], late: list[float],
         uniform: list[float], ceiling: list[float],
         greedy: tuple[list[float], list[float]] = ([], [])) -> Row:
    scores = [_normalised(m, u, c) for m, u, c in zip(means, uniform, ceiling, strict=True)]
    return Row(name=name, mean=_mean(means), min=min(means), max=max(means), early=_mean(early),
               late=_mean(late), normalised=_mean(scores), seeds=means,
               greedy=_mean(greedy[0]), greedy_late=_mean(greedy[1]))


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def summarise_env(jobs: Sequence[JobResult], routers: Sequence[str]) -> EnvSummary:
    """The rows of one environment from its jobs (one per seed)."""
    jobs = sorted(jobs, key=lambda j: j.seed)
    refs = [j.references for j in jobs]
    uniform = [r.uniform for r in refs]
    ceiling = [r.ceiling for r in refs]
    rows = [_row(name, [j.runs[name].mean for j in jobs], [j.runs[name].early for j in jobs],
                 [j.runs[name].late for j in jobs], uniform, ceiling,
                 ([j.runs[name].greedy for j in jobs], [j.runs[name].greedy_late for j in jobs]))
            for name in jobs[0].runs]
    rows.append(_row("uniform", uniform, [r.uniform_early for r in refs],
                     [r.uniform_late for r in refs], uniform, ceiling))
    rows.append(_row("best fixed", [r.best_fixed for r in refs],
                     [r.best_fixed_early for r in refs], [r.best_fixed_late for r in refs],
                     uniform, ceiling))
    rows.append(_row("oracle", [r.oracle for r in refs], [r.oracle_early for r in refs],
                     [r.oracle_late for r in refs], uniform, ceiling))
    skylines = [r.skyline for r in refs]
    has_skyline = all(s is not None for s in skylines)
    if has_skyline:
        values = [float(s) for s in skylines if s is not None]
        rows.append(_row("skyline", values, values, values, uniform, ceiling))
    by_name = {row.name: row for row in rows}
    simple = max(by_name["best fixed"].mean, by_name[PLAIN_VW].mean)
    return EnvSummary(env=jobs[0].env, kind=jobs[0].kind, actions=jobs[0].actions,
                      steps=jobs[0].steps, seeds=[j.seed for j in jobs], rows=rows,
                      skyline=has_skyline,
                      margins={r: by_name[r].mean - simple for r in routers})


def summarise(results: Sequence[JobResult], routers: Sequence[str]) -> SuiteSummary:
    """Every environment's summary (in the order first met), aggregates and targets."""
    by_env: dict[str, list[JobResult]] = {}
    for job in results:
        by_env.setdefault(job.env, []).append(job)
    envs = [summarise_env(jobs, routers) for jobs in by_env.values()]
    aggregates: dict[str, dict[str, float]] = {}
    for kind in ("world", "classification", "real"):
        members = [e for e in envs if e.kind == kind]
        if members:
            names = [row.name for row in members[0].rows if row.name != "skyline"]
            aggregates[kind] = {n: _mean([e.row(n).normalised for e in members]) for n in names}
    worst = {r: min(((e.env, e.margins[r]) for e in envs), key=lambda p: p[1]) for r in routers}
    targets = {r: check_targets(envs, r) for r in routers}
    return SuiteSummary(envs=envs, routers=list(routers), aggregates=aggregates,
                        worst_margin=worst, targets=targets)


def check_targets(envs: Sequence[EnvSummary], router: str) -> list[TargetCheck]:
    """Issue 17's Targets for ``router`` on this run's environments."""
    checks: list[TargetCheck] = []
    below = [f"{e.env} {e.margins[router]:+.4f}" for e in envs
             if e.margins[router] < -MARGIN_TOLERANCE]
    checks.append(TargetCheck(
        target=f"every environment: mean >= max(best fixed, plain VW) - {MARGIN_TOLERANCE}",
        figure=f"{len(envs) - len(below)}/{len(envs)} met"
               + (f"; missed: {', '.join(below)}" if below else ""),
        met=not below if envs else None))
    spread = []
    for e in envs:
        row = e.row(router)
        if row.min < row.mean - SEED_TOLERANCE:
            spread.append(f"{e.env} (min {row.min:.4f}, mean {row.mean:.4f})")
    checks.append(TargetCheck(
        target=f"every environment: no seed more than {SEED_TOLERANCE} below the seeds' mean",
        figure=f"{len(envs) - len(spread)}/{len(envs)} met"
               + (f"; missed: {', '.join(spread)}" if spread else ""),
        met=not spread if envs else None))
    worlds = [e.row(router).normalised for e in envs if e.kind == "world"]
    world_score = _mean(worlds)
    checks.append(TargetCheck(
        target=f"simulated worlds: mean normalised score >= {WORLD_SCORE_TARGET}",
        figure=f"{world_score:.3f} over {len(worlds)}" if worlds else "no world in this run",
        met=world_score >= WORLD_SCORE_TARGET if worlds else None))
    sets = [e for e in envs if e.kind == "classification" and e.skyline]
    fractions = [e.row(router).mean / e.row("skyline").mean for e in sets]
    worst_set = min(fractions) if fractions else math.nan
    checks.append(TargetCheck(
        target=f"classification sets: >= {CLASSIFICATION_TARGET} of the full-information "
               "learner on every set",
        figure=(f"worst {worst_set:.3f}, mean {_mean(fractions):.3f} over {len(sets)}"
                if sets else "no classification set in this run"),
        met=worst_set >= CLASSIFICATION_TARGET if sets else None))
    real = [e for e in envs if e.kind == "real"]
    short = [f"{e.env} {e.row(router).late:.4f} < {e.row('best fixed').late:.4f}" for e in real
             if e.row(router).late < e.row("best fixed").late]
    checks.append(TargetCheck(
        target="real outcomes: second half >= the best single action's",
        figure=(f"{len(real) - len(short)}/{len(real)} met"
                + (f"; missed: {', '.join(short)}" if short else "")) if real
        else "no real-outcome environment in this run",
        met=not short if real else None))
    return checks
