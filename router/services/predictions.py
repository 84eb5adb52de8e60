"""The route response's ``predictions`` and ``risk`` for the chosen action.

With a current batch-model version, predictions come from it (``source`` is
``batch:<version>``) and risk factors from the success model's per-feature contributions. Before
any version is promoted, predictions come from the online outcome statistics shrunk to catalog
priors (``source`` says ``prior`` or ``online``). Risk levels follow the success probability:
``low`` at or above 0.70, ``medium`` at or above 0.45, ``high`` below.
"""

from __future__ import annotations

from learners.batch.models import Contribution
from learners.catalog import Action
from learners.estimates import CostEstimate
from learners.online_stats import ActionPrediction
from router.schemas import Predictions, Risk

LOW_RISK_AT = 0.70
MEDIUM_RISK_AT = 0.45
FEW_OBSERVATIONS = 20
COMPLEX_TASK_AT = 7.0
HOT_TEMPERATURE_AT = 0.7
BUDGET_SHARE = 0.8


def build_predictions(
    online: ActionPrediction, estimate: CostEstimate, complexity: float
) -> Predictions:
    return Predictions(
        success_probability=round(online.success_probability, 4),
        quality=round(online.quality, 3),
        complexity=round(complexity, 2),
        time_s=round(online.time_s, 3),
        time_interval_s=(round(online.time_interval_s[0], 3), round(online.time_interval_s[1], 3)),
        cost_usd=round(estimate.cost_usd, 6),
        source=online.source,
    )


def risk_level(success_probability: float) -> str:
    if success_probability >= LOW_RISK_AT:
        return "low"
    if success_probability >= MEDIUM_RISK_AT:
        return "medium"
    return "high"


def assess_risk(
    predictions: Predictions,
    observations: int,
    action: Action,
    max_cost_usd: float | None,
    explored: bool,
    propensity: float,
) -> Risk:
    """Risk level and the concrete reasons behind it, in words."""
    factors: list[str] = []
    p = predictions.success_probability
    if p < LOW_RISK_AT:
        factors.append(f"predicted success probability {p:.2f} is below {LOW_RISK_AT:.2f}")
    if observations < FEW_OBSERVATIONS:
        factors.append(
            f"only {observations} observed outcomes for model {action.model.name}; "
            "predictions lean on catalog priors"
        )
    if predictions.complexity >= COMPLEX_TASK_AT:
        factors.append(f"complex task (complexity {predictions.complexity:.1f} of 10)")
        if action.temperature >= HOT_TEMPERATURE_AT:
            factors.append(f"high temperature {action.temperature:g} for a complex task")
    if max_cost_usd is not None and predictions.cost_usd >= BUDGET_SHARE * max_cost_usd:
        factors.append(
            f"estimated cost ${predictions.cost_usd:.4f} is close to max_cost_usd ${max_cost_usd:g}"
        )
    if explored:
        factors.append(f"exploratory choice (drawn with probability {propensity:.3f})")
    return Risk(level=risk_level(p), factors=factors)


def assess_batch_risk(
    predictions: Predictions,
    contributions: list[Contribution],
    action: Action,
    max_cost_usd: float | None,
    explored: bool,
    propensity: float,
    strategy: str | None,
) -> Risk:
    """Risk from the success model: the level from its calibrated probability, the factors
    from its per-feature contributions for the chosen action (the ones that lower the
    prediction first), then budget, exploration and any conservative strategy applied."""
    factors = [c.describe() for c in sorted(contributions, key=lambda c: c.log_odds)]
    if max_cost_usd is not None and predictions.cost_usd >= BUDGET_SHARE * max_cost_usd:
        factors.append(
            f"estimated cost ${predictions.cost_usd:.4f} is close to max_cost_usd ${max_cost_usd:g}"
        )
    if explored:
        factors.append(f"exploratory choice (drawn with probability {propensity:.3f})")
    if strategy is not None:
        factors.append(strategy)
    return Risk(level=risk_level(predictions.success_probability), factors=factors)
