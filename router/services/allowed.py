"""Which catalog actions a request may use: catalog ∩ template languages ∩ constraints ∩ budgets."""

from __future__ import annotations

from learners.catalog import Catalog
from learners.context import Task
from learners.estimates import estimate_action_cost
from router.errors import NoAllowedActionError, UnknownCatalogNameError
from router.schemas import Constraints


def allowed_actions(
    catalog: Catalog, task: Task, constraints: Constraints, complexity: float, rag_examples: int
) -> list[int]:
    """Indices of the allowed actions, in catalog order; raises when none is left."""
    models = _names("models", constraints.models, catalog.model_names)
    templates = _names("templates", constraints.templates, catalog.template_names)
    temperatures = _temperatures(catalog, constraints.temperatures)
    candidates = catalog.indices_for_language(task.language)
    unconstrained = (
        models is None
        and templates is None
        and temperatures is None
        and constraints.max_cost_usd is None
        and constraints.max_latency_s is None
    )
    if unconstrained:
        allowed = list(candidates)
    else:
        allowed = []
        for index in candidates:
            action = catalog.actions[index]
            if models is not None and action.model.name not in models:
                continue
            if templates is not None and action.template.name not in templates:
                continue
            if temperatures is not None and action.temperature not in temperatures:
                continue
            if constraints.max_cost_usd is not None or constraints.max_latency_s is not None:
                estimate = estimate_action_cost(action, task, complexity, rag_examples)
                if (
                    constraints.max_cost_usd is not None
                    and estimate.cost_usd > constraints.max_cost_usd
                ):
                    continue
                if (
                    constraints.max_latency_s is not None
                    and estimate.latency_s > constraints.max_latency_s
                ):
                    continue
            allowed.append(index)
    if not allowed:
        raise NoAllowedActionError(_why_empty(constraints, len(candidates)), field="constraints")
    return allowed


def _names(field: str, requested: list[str] | None, known: frozenset[str]) -> frozenset[str] | None:
    if requested is None:
        return None
    for position, name in enumerate(requested):
        if name not in known:
            raise UnknownCatalogNameError(
                f"{name!r} is not in the catalog; known {field}: {', '.join(sorted(known))}",
                field=f"constraints.{field}[{position}]",
            )
    return frozenset(requested)


def _temperatures(catalog: Catalog, requested: list[float] | None) -> frozenset[float] | None:
    if requested is None:
        return None
    known = {action.temperature for action in catalog.actions}
    for position, value in enumerate(requested):
        if value not in known:
            listed = ", ".join(f"{t:g}" for t in sorted(known))
            raise UnknownCatalogNameError(
                f"temperature {value:g} is not in the catalog; known temperatures: {listed}",
                field=f"constraints.temperatures[{position}]",
            )
    return frozenset(requested)


def _why_empty(constraints: Constraints, language_ok: int) -> str:
    if language_ok == 0:
        return "no template of the catalog allows this task's language"
    parts = []
    if constraints.max_cost_usd is not None:
        parts.append(f"max_cost_usd={constraints.max_cost_usd:g}")
    if constraints.max_latency_s is not None:
        parts.append(f"max_latency_s={constraints.max_latency_s:g}")
    for name in ("models", "templates", "temperatures"):
        if getattr(constraints, name) is not None:
            parts.append(name)
    return "the constraints (" + ", ".join(parts) + ") leave no catalog action for this task"
