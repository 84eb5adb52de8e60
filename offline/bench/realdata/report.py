"""Reporting of the real-data benchmark: terminal tables, the targets' verdict, the PNG plot.

Kept apart from the computation (:mod:`offline.bench.realdata.benchmark`); matplotlib is imported
only when a plot is written.
"""

from __future__ import annotations

import math
from pathlib import Path

from offline.bench.realdata.benchmark import COST_TARGET, GAP_TARGET, PolicyRow, ProtocolResult

PER_1000 = 1000.0  # costs are shown in USD per 1,000 prompts: per-prompt figures are ~1e-4
_HEADER = (f"{'policy':<64}{'accuracy':>16}{'USD/1k prompts':>18}{'cost/ref':>10}"
           f"{'SE diff':>9}{'gap closed':>12}{'hull acc':>10}{'target':>8}")


def _measure(mean: float, std: float, runs: int, scale: float = 1.0, digits: int = 3) -> str:
    text = f"{mean * scale:.{digits}f}"
    return f"{text} ± {std * scale:.{digits}f}" if runs > 1 else text


def format_protocol(result: ProtocolResult) -> str:
    """One table per λ, preceded by the protocol's evaluation set and references."""
    ref = result.reference_model
    head = [
        f"== protocol {result.protocol}, subset {result.subset}: {result.n_eval} prompts routed"
        + (f", history {result.n_history} prompts ({result.dropped_duplicates} train prompts "
           "dropped: their text is in the test split)" if result.protocol == "warm" else "")
        + (f", each by routers trained on the other folds (up to {result.n_history} prompts; "
           "folds grouped by prompt text)" if result.protocol == "cv" else "")
        + (", fold seeds " if result.protocol == "cv" else ", seeds ")
        + ", ".join(map(str, result.seeds)),
        f"most accurate single model: {ref} (accuracy {result.reference_accuracy:.3f}, "
        f"{result.reference_cost_usd * PER_1000:.4f} USD per 1,000 prompts); oracle accuracy "
        f"{result.oracle_accuracy:.3f}; 'SE diff': standard error of a router's accuracy minus "
        f"that model's, paired over the {result.n_eval} prompts",
    ]
    blocks = ["\n".join(head)]
    for table in result.tables:
        lines = [f"λ = {table.lam:g} (reward = score − λ·cost in USD)"]
        lines += [_HEADER, "-" * len(_HEADER)]
        lines += [_format_row(row) for row in table.rows]
        blocks.append("\n".join(lines))
    if result.cv_lambda_rows:
        lines = ["λ chosen by cross-validation on the training prompts only (the most accurate "
                 f"λ whose cost is ≤ {COST_TARGET:.0%} of the most accurate single model's)",
                 _HEADER, "-" * len(_HEADER)]
        lines += [_format_row(row) for row in result.cv_lambda_rows]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _format_row(row: PolicyRow) -> str:
    hull = "-" if row.hull_accuracy is None else f"{row.hull_accuracy:.3f}"
    target = ("yes" if row.meets_accuracy_at_half_cost else "no") if row.kind == "router" else ""
    diff_se = "" if row.diff_se is None else f"{row.diff_se:.3f}"
    return (f"{row.policy:<64}"
            f"{_measure(row.accuracy.mean, row.accuracy.std, row.accuracy.runs):>16}"
            f"{_measure(row.cost_usd.mean, row.cost_usd.std, row.cost_usd.runs, PER_1000, 4):>18}"
            f"{row.cost_ratio:>10.2f}{diff_se:>9}{row.gap_closed:>12.2f}{hull:>10}{target:>8}")


def _named(lam: float, row: PolicyRow) -> str:
    """The row's policy and λ (a λ-by-CV row names its own λ: ``lam`` is NaN)."""
    return row.policy if math.isnan(lam) else f"{row.policy} at λ={lam:g}"


def format_targets(result: ProtocolResult) -> str:
    """Whether any router, at any λ, reaches the most accurate single model's accuracy at
    ≤ 50% of its cost, and (warm protocol) closes ≥ 25% of the gap to the oracle."""
    routers = [(t.lam, row) for t in result.tables for row in t.rows if row.kind == "router"]
    routers += [(float("nan"), row) for row in result.cv_lambda_rows]
    if not routers:
        return f"targets ({result.protocol}): no router was run"
    cheap = [(lam, row) for lam, row in routers if row.meets_accuracy_at_half_cost]
    lines = [f"targets ({result.protocol}, {result.subset}):"]
    if cheap:
        met = ", ".join(_named(lam, row) for lam, row in cheap)
        lines.append(f"  accuracy ≥ {result.reference_accuracy:.3f} at ≤ {COST_TARGET:.0%} of "
                     f"its cost: met by {met}")
    else:
        affordable = [(lam, row) for lam, row in routers if row.cost_ratio <= COST_TARGET]
        closest = max(affordable, key=lambda item: item[1].accuracy.mean, default=None)
        miss = ("no router run was that cheap" if closest is None else
                f"best at ≤ {COST_TARGET:.0%} cost: {_named(*closest)}, "
                f"accuracy {closest[1].accuracy.mean:.3f} "
                f"({closest[1].accuracy.mean - result.reference_accuracy:+.3f}) at "
                f"{closest[1].cost_ratio:.0%} of the cost")
        lines.append(f"  accuracy ≥ {result.reference_accuracy:.3f} at ≤ {COST_TARGET:.0%} of "
                     f"its cost: NOT met; {miss}")
    lam, best = max(routers, key=lambda item: item[1].gap_closed)
    verdict = "met" if best.gap_closed >= GAP_TARGET else "NOT met"
    lines.append(f"  gap closed ≥ {GAP_TARGET:.0%}: {verdict}; best {_named(lam, best)}: "
                 f"{best.gap_closed:.0%} (accuracy {best.accuracy.mean:.3f}, "
                 f"{best.cost_ratio:.0%} of the cost)")
    return "\n".join(lines)


def save_plot(results: list[ProtocolResult], path: Path) -> None:
    """Cost against accuracy, one panel per protocol: single models, the zero-router hull, the
    oracle, uniform choice and each router (one point per λ, error bars over seeds)."""
    from matplotlib.figure import Figure  # lazy: plotting is optional; Figure uses Agg

    fig = Figure(figsize=(7.5 * len(results), 6.0))
    for index, result in enumerate(results, start=1):
        ax = fig.add_subplot(1, len(results), index)
        xs = [p.cost * PER_1000 for p in result.single_models]
        ax.scatter(xs, [p.accuracy for p in result.single_models], color="grey", zorder=3,
                   label="single models")
        for name, point in zip(result.models, result.single_models, strict=True):
            ax.annotate(name, (point.cost * PER_1000, point.accuracy), fontsize=6,
                        xytext=(3, 2), textcoords="offset points")
        ax.plot([p.cost * PER_1000 for p in result.hull], [p.accuracy for p in result.hull],
                color="grey", linestyle="--", label="zero-router hull")
        series: dict[str, list[PolicyRow]] = {}
        for table in result.tables:
            for row in table.rows:
                key = "best single, hindsight" if row.policy.startswith("best single, h") else (
                    "best single, chosen on train" if row.policy.startswith("best single, c")
                    else row.policy)
                series.setdefault(key, []).append(row)
        for name, rows in series.items():
            if name.startswith("best single"):
                continue  # the single-model points already show them
            style = {"marker": "*", "markersize": 12} if name == "oracle" else {"marker": "o"}
            ax.errorbar([r.cost_usd.mean * PER_1000 for r in rows],
                        [r.accuracy.mean for r in rows],
                        xerr=[r.cost_usd.std * PER_1000 for r in rows],
                        yerr=[r.accuracy.std for r in rows], label=name, capsize=2,
                        linewidth=1, **style)
        ax.set_xlabel("estimated cost, USD per 1,000 prompts")
        ax.set_ylabel("accuracy (mean score)")
        ax.set_title(f"{result.protocol}, {result.subset}: {result.n_eval} prompts "
                     f"(λ = {', '.join(f'{t.lam:g}' for t in result.tables)})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
