"""Text tables, JSON and plots of a suite run
(:class:`~offline.bench.suite.summary.SuiteSummary`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import msgspec

from offline.bench.suite.baselines import PLAIN_VW_ARGUMENTS
from offline.bench.suite.runner import JobResult
from offline.bench.suite.summary import EnvSummary, SuiteSummary


def _num(value: float, width: int = 8, sign: bool = False) -> str:
    if math.isnan(value):
        return f"{'-':>{width}}"
    return f"{value:>+{width}.4f}" if sign else f"{value:>{width}.4f}"


def format_env(env: EnvSummary) -> str:
    """One environment's table: each contender's mean over the run (and its spread over seeds),
    the first-1,000-decisions mean, the second-half mean, the normalised score, and for the
    routers the mean and second-half mean of their most probable actions (``greedy``)."""
    ceiling = "skyline" if env.skyline else "oracle"
    lines = [f"{env.env}  ({env.kind}, {env.actions} actions, {env.steps} steps, seeds "
             f"{', '.join(map(str, env.seeds))}; normalised against the {ceiling})",
             f"  {'contender':<14}{'mean':>8}{'min':>8}{'max':>8}{'first 1k':>10}"
             f"{'2nd half':>10}{'normalised':>12}{'greedy':>9}{'greedy 2nd':>12}"]
    for row in env.rows:
        lines.append(f"  {row.name:<14}{_num(row.mean)}{_num(row.min)}{_num(row.max)}"
                     f"{_num(row.early, 10)}{_num(row.late, 10)}{_num(row.normalised, 12)}"
                     f"{_num(row.greedy, 9)}{_num(row.greedy_late, 12)}")
    for router, margin in env.margins.items():
        lines.append(f"  margin of {router} = {router} - max(best fixed, plain-vw): "
                     f"{margin:+.4f}")
    return "\n".join(lines)


def format_summary(summary: SuiteSummary, command: str, seconds: float) -> str:
    """Every environment's table, then the aggregates and the Targets."""
    parts = [f"command: {command}\nplain-vw: vw {PLAIN_VW_ARGUMENTS}",
             *[format_env(env) for env in summary.envs]]
    names = [n for n in next(iter(summary.aggregates.values()), {})]
    lines = ["mean normalised score by kind", f"  {'kind':<16}"
             + "".join(f"{n:>14}" for n in names)]
    for kind, scores in summary.aggregates.items():
        lines.append(f"  {kind:<16}" + "".join(_num(scores.get(n, math.nan), 14)
                                                for n in names))
    parts.append("\n".join(lines))
    for router in summary.routers:
        env, margin = summary.worst_margin[router]
        checks = [f"{router}: worst margin {margin:+.4f} ({env})"]
        for check in summary.targets[router]:
            status = {True: "met", False: "MISSED", None: "n/a"}[check.met]
            checks.append(f"  [{status:>6}] {check.target}: {check.figure}")
        parts.append("\n".join(checks))
    parts.append(f"wall time: {seconds:.0f} s")
    return "\n\n".join(parts)


def write_json(path: Path, results: Sequence[JobResult], summary: SuiteSummary,
               command: str, seconds: float) -> None:
    """Every job's figures, the summary and the command, as one JSON document."""
    document = {"command": command, "seconds": round(seconds, 1), "summary": summary,
                "jobs": list(results)}
    path.write_bytes(msgspec.json.format(msgspec.json.encode(document)))


def plot(path: Path, summary: SuiteSummary) -> None:
    """A bar chart of each contender's normalised score per environment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [row.name for row in summary.envs[0].rows
             if row.name not in ("uniform", "oracle", "skyline")]
    envs = summary.envs
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.9 * len(envs) + 2.0), 4.5))
    for k, name in enumerate(names):
        values = [env.row(name).normalised for env in envs]
        positions = [i + (k - (len(names) - 1) / 2) * width for i in range(len(envs))]
        ax.bar(positions, values, width=width, label=name)
    ax.set_xticks(range(len(envs)))
    ax.set_xticklabels([env.env for env in envs], rotation=45, ha="right", fontsize=8)
    ax.axhline(0.0, color="black", linewidth=0.6)
    ax.axhline(1.0, color="grey", linewidth=0.6, linestyle="--")
    ax.set_ylabel("(score - uniform) / (oracle or skyline - uniform)")
    ax.set_title("router bench-suite: normalised score, mean over seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
