"""Replay results as a terminal table and as JSON (``--json``)."""

from __future__ import annotations

import msgspec

from offline.replay.estimators import ESTIMATORS
from offline.replay.evaluate import ReplayReport


def format_table(report: ReplayReport) -> str:
    """Estimates with both intervals, then the weight diagnostics, one line per policy."""
    level = round(report.options.level * 100)
    clip = report.options.clip
    low, high = report.reward_range
    lines = [
        f"log: {report.log}   rows: {report.n:,}   actions: {report.actions} "
        f"({report.logged_actions} logged)   mean logged reward: {report.logged_reward:.4f}",
        f"reward model: {report.reward_model}   weight clip: {clip if clip else 'none'}   "
        f"switch-dr tau: {report.options.switch_tau:g}   "
        f"bootstrap: {report.options.bootstrap} replicates",
        f"intervals: widened by each policy's unsupported mass (actions logged fewer than "
        f"{report.options.min_support} times, or given probability 0) times the reward range, "
        f"then clipped to [{low:g}, {high:g}] (* where an end was clipped)",
        *(f"{name}: {note}" for name, note in report.notes.items()),
        "",
        f"{'policy':<28}{'estimator':<11}{'value':>9}  {f'{level}% CI (bootstrap)':<22}"
        f"{f'{level}% CI (analytic)':<22}",
    ]
    for name, policy in report.policies.items():
        for i, estimator in enumerate(ESTIMATORS):
            e = policy.estimates[estimator]
            lines.append(
                f"{_short(name) if i == 0 else '':<28}{estimator:<11}{e.value:>9.4f}"
                f"{'*' if e.clipped else ' '} {_interval(e.ci):<22}{_interval(e.ci_analytic):<22}")
    lines += ["", f"{'policy':<28}{'n':>10}{'ESS':>12}{'max weight':>12}{'mean weight':>12}"
              f"{'clipped':>9}{'unsupported rows':>18}{'mass':>8}"]
    for name, policy in report.policies.items():
        lines.append(
            f"{_short(name):<28}{policy.n:>10,}{policy.ess:>12,.1f}{policy.max_weight:>12.4g}"
            f"{policy.mean_weight:>12.4f}{policy.clipped_rows:>9,}"
            f"{policy.unsupported_share:>17.1%} {policy.unsupported_mass:>8.4f}")
    warnings = warnings_for(report)
    if warnings:
        lines += ["", *warnings]
    return "\n".join(lines)


def warnings_for(report: ReplayReport) -> list[str]:
    """Plain-language cautions a user should read before trusting an estimate."""
    out: list[str] = []
    for name, policy in report.policies.items():
        if policy.unsupported_mass >= 0.0005:  # shown as 0.001 or more
            out.append(f"warning: {name} puts probability outside the logger's support (actions "
                       f"it gave probability 0, or chose too rarely in this log) in "
                       f"{policy.unsupported_share:.1%} of rows (mean mass "
                       f"{policy.unsupported_mass:.3f}); no estimator can see their reward, so "
                       "the reward model imputes it and the intervals span the reward range "
                       "over that mass")
        gap = abs(policy.mean_weight - 1.0)
        if report.options.clip is None and gap > max(4.0 * policy.mean_weight_se, 1e-9):
            out.append(f"warning: {name}'s mean importance weight is {policy.mean_weight:.3f} "
                       f"(± {policy.mean_weight_se:.3f}), not 1: it puts probability where "
                       "the logger could not act, or the logged propensities are wrong; "
                       "IPS and DR are then biased")
        if policy.n and policy.ess < 0.01 * policy.n:
            out.append(f"warning: {name} has an effective sample size of {policy.ess:.0f} of "
                       f"{policy.n} rows; its intervals are wide and IPS is unreliable")
    return out


def _short(name: str, width: int = 27) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _interval(ci: tuple[float, float]) -> str:
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]"


def write_json(report: ReplayReport, path: str) -> None:
    """``{"policies": {"<name>": {"n": …, "ess": …, "estimates": {"ips": {"value": …,
    "ci": [lo, hi]}, …}}}, …}`` plus the run's options and diagnostics (NaN as null)."""
    data = msgspec.json.encode(report)
    with open(path, "wb") as handle:
        handle.write(msgspec.json.format(data))
