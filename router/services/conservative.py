"""The conservative strategy (``[batch] conservative``): when the batch models call the greedy
action high-risk, the route chooses among cooler temperatures and the best-ranked templates."""

from __future__ import annotations

from learners.catalog import Catalog
from router.services.batch import BatchView
from router.services.predictions import risk_level
from router.settings import BatchSettings


def conservative_actions(batch: BatchView, catalog: Catalog, allowed: list[int], greedy: int,
                         settings: BatchSettings) -> list[int] | None:
    """Safer allowed actions when the greedy action (at position ``greedy``) is high-risk and
    the strategy is on, else None; the reason is kept on ``batch`` (it is logged)."""
    if not settings.conservative:
        return None
    if risk_level(batch.success(greedy)) != "high":
        return None
    templates = set(batch.template_ranking[: settings.conservative_templates])
    actions = catalog.actions
    safer = [
        i
        for i in allowed
        if actions[i].temperature <= settings.conservative_max_temperature
        and actions[i].template.name in templates
    ]
    if not safer or len(safer) == len(allowed):
        return None
    batch.conservative_reason = (
        f"conservative strategy: predicted success {batch.success(greedy):.2f} of the "
        f"greedy action is high-risk; chose among temperature <= "
        f"{settings.conservative_max_temperature:g} and templates {sorted(templates)}"
    )
    return safer
