"""Batch-model predictions for one request: every allowed action in one call per model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from learners.batch.models import ActionPredictions, Contribution
from learners.catalog import Catalog
from learners.estimates import CostEstimate
from learners.features import ContextRecord
from learners.history import HistoryFeatures
from router.schemas import Predictions
from router.services.models import LoadedModels


class BatchView:
    """Predictions of the current batch models over a request's allowed actions."""

    def __init__(
        self,
        *,
        loaded: LoadedModels,
        matrix: np.ndarray,
        allowed: Sequence[int],
        actions: ActionPredictions,
        complexity: float,
        template_ranking: list[str],
        success_leaves: np.ndarray | None = None,
    ) -> None:
        self.loaded = loaded
        self.matrix = matrix
        self.allowed = list(allowed)
        self.actions = actions
        self.complexity = complexity
        self.template_ranking = template_ranking
        self.success_leaves = success_leaves  # per row, when the native kernel computed them
        self.conservative_reason: str | None = None

    @property
    def success(self) -> list[float]:
        return self.actions.success

    @classmethod
    def compute(
        cls,
        loaded: LoadedModels,
        record: ContextRecord,
        history: HistoryFeatures,
        catalog: Catalog,
        allowed: Sequence[int],
    ) -> BatchView:
        models = loaded.models
        matrix = models.encoder.matrix(record, history, catalog, allowed)
        predicted = models.predict_request(matrix)
        # One row per template among the allowed actions (its first allowed action).
        first: dict[str, int] = {}
        for position, index in enumerate(allowed):
            first.setdefault(catalog.actions[index].template.name, position)
        names = list(first)
        scores = models.rank_templates(matrix[list(first.values())])
        order = sorted(range(len(names)), key=lambda i: (-scores[i], names[i]))
        return cls(
            loaded=loaded,
            matrix=matrix,
            allowed=allowed,
            actions=predicted.actions,
            complexity=predicted.complexity,
            template_ranking=[names[i] for i in order],
            success_leaves=predicted.success_leaves,
        )

    def subset(self, allowed: Sequence[int], kept: Sequence[int]) -> BatchView:
        """The same predictions restricted to ``kept`` (a subset of ``allowed``)."""
        where = {index: position for position, index in enumerate(allowed)}
        rows = [where[i] for i in kept]
        a = self.actions
        view = BatchView(
            loaded=self.loaded,
            matrix=self.matrix[rows],
            allowed=kept,
            actions=ActionPredictions(
                success=[a.success[r] for r in rows],
                quality=[a.quality[r] for r in rows],
                time_s=[a.time_s[r] for r in rows],
                time_low_s=[a.time_low_s[r] for r in rows],
                time_high_s=[a.time_high_s[r] for r in rows],
            ),
            complexity=self.complexity,
            template_ranking=self.template_ranking,
            success_leaves=None if self.success_leaves is None else self.success_leaves[rows],
        )
        view.conservative_reason = self.conservative_reason
        return view

    def predictions(self, position: int, estimate: CostEstimate) -> Predictions:
        a = self.actions
        return Predictions(
            success_probability=round(a.success[position], 4),
            quality=round(a.quality[position], 3),
            complexity=round(self.complexity, 2),
            time_s=round(a.time_s[position], 3),
            time_interval_s=(round(a.time_low_s[position], 3), round(a.time_high_s[position], 3)),
            cost_usd=round(estimate.cost_usd, 6),
            source=f"batch:{self.loaded.version}",
        )

    def contributions(self, position: int) -> list[Contribution]:
        leaves = None if self.success_leaves is None else self.success_leaves[position]
        return self.loaded.models.success_contributions(self.matrix[position], leaves=leaves)
