"""A one-file HTML report of a replay run: tables plus three plots as embedded PNGs.

Plots: each policy's value and interval under every estimator; each policy's importance-weight
histogram; the logged reward and each policy's DR estimate over the log, in consecutive slices.
Matplotlib is imported here only (Agg backend), so computing estimates never loads it.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime
from typing import Any

import numpy as np

from offline.replay.estimators import ESTIMATORS
from offline.replay.evaluate import ReplayReport
from offline.replay.report import format_table, warnings_for


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(report: ReplayReport) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report.policies)
    out: dict[str, str] = {}

    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 3), 4.2))
    offsets = np.linspace(-0.32, 0.32, len(ESTIMATORS))
    for offset, estimator in zip(offsets, ESTIMATORS, strict=True):
        values = np.array([report.policies[n].estimates[estimator].value for n in names])
        low = np.array([report.policies[n].estimates[estimator].ci[0] for n in names])
        high = np.array([report.policies[n].estimates[estimator].ci[1] for n in names])
        x = np.arange(len(names)) + offset
        # A percentile interval need not contain the estimate: draw it as a segment.
        lines = ax.vlines(x, low, high, linewidth=2, alpha=0.6)
        ax.plot(x, values, "o", color=lines.get_color()[0], label=estimator)
    ax.axhline(report.logged_reward, color="grey", linestyle=":", label="mean logged reward")
    ax.set_xticks(np.arange(len(names)), names, rotation=20, ha="right")
    ax.set_ylabel(f"estimated value ({round(report.options.level * 100)}% bootstrap CI)")
    ax.legend(fontsize=8, ncol=3)
    ax.grid(alpha=0.3)
    out["values"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    for name in names:
        hist = report.policies[name].weights
        edges = np.asarray(hist.edges)
        ax.stairs(np.asarray(hist.counts), edges, label=f"{name} (zero weight: {hist.zero:,})")
    ax.set_xscale("log")
    ax.set_xlabel("importance weight π(a|x) / p (positive weights)")
    ax.set_ylabel("rows")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    out["weights"] = _png(fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8.0, 4.0))
    bins = report.time_bins
    timed = all(b.start is not None for b in bins)
    times: Any = ([datetime.fromtimestamp(b.start or 0.0, tz=UTC) for b in bins] if timed
              else [b.first_row for b in bins])
    ax.plot(times, [b.logged_reward for b in bins], color="black", linewidth=2,
            label="logged reward")
    for name in names:
        ax.plot(times, report.policies[name].over_time, label=f"{name} (DR)", alpha=0.8)
    ax.set_xlabel("decision time (UTC)" if timed else "log row")
    ax.set_ylabel(f"mean per slice ({len(bins)} slices)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    out["time"] = _png(fig)
    plt.close(fig)
    return out


def write_html(report: ReplayReport, path: str) -> None:
    plots = _plots(report)
    rows = []
    for name, policy in report.policies.items():
        for estimator in ESTIMATORS:
            e = policy.estimates[estimator]
            rows.append(
                f"<tr><td>{html.escape(name)}</td><td>{estimator}</td><td>{e.value:.4f}</td>"
                f"<td>[{e.ci[0]:.4f}, {e.ci[1]:.4f}]</td>"
                f"<td>[{e.ci_analytic[0]:.4f}, {e.ci_analytic[1]:.4f}]</td></tr>")
    diagnostics = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{p.n:,}</td><td>{p.ess:,.1f}</td>"
        f"<td>{p.max_weight:.4g}</td><td>{p.mean_weight:.4f}</td><td>{p.clipped_rows:,}</td>"
        f"<td>{p.unsupported_share:.1%}</td><td>{p.unsupported_mass:.4f}</td></tr>"
        for name, p in report.policies.items())
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in warnings_for(report))
    level = round(report.options.level * 100)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Replay report: {html.escape(report.log)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}pre{{background:#f6f6f6;padding:1em}}</style>
</head><body>
<h1>Off-policy evaluation</h1>
<p>Log <code>{html.escape(report.log)}</code>: {report.n:,} decisions, {report.actions} actions
({report.logged_actions} ever logged), mean logged reward {report.logged_reward:.4f}.
Reward model: {html.escape(report.reward_model)}; weight clip:
{report.options.clip if report.options.clip else "none"}; Switch-DR τ =
{report.options.switch_tau:g}; {report.options.bootstrap} bootstrap replicates.</p>
{f"<ul>{warnings}</ul>" if warnings else ""}
<h2>Estimates</h2>
<table><tr><th>policy</th><th>estimator</th><th>value</th><th>{level}% CI (bootstrap)</th>
<th>{level}% CI (analytic)</th></tr>{"".join(rows)}</table>
<p><img alt="values" src="data:image/png;base64,{plots["values"]}"></p>
<h2>Importance weights</h2>
<table><tr><th>policy</th><th>n</th><th>ESS</th><th>max weight</th><th>mean weight</th>
<th>clipped rows</th><th>rows with unsupported mass</th><th>mean unsupported mass</th></tr>
{diagnostics}</table>
<p><img alt="weights" src="data:image/png;base64,{plots["weights"]}"></p>
<h2>Reward over time</h2>
<p><img alt="reward over time" src="data:image/png;base64,{plots["time"]}"></p>
<h2>Terminal output</h2><pre>{html.escape(format_table(report))}</pre>
</body></html>
"""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
