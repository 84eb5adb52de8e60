"""Batch-model predictions for one request, computed only for the actions the response needs.

A route call needs the success probability of the greedy action (the conservative strategy's
test) and, for the chosen action, its predictions and the success model's contributions; the
template ranking is logged with every decision. Predicting every allowed action with the
boosters' own predictors would cost more than the whole route without models (``router
bench-models``), so each row is predicted when it is asked for, once.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from learners.batch.models import Contribution
from learners.catalog import Catalog
from learners.estimates import CostEstimate
from learners.features import ContextRecord
from learners.history import HistoryFeatures
from router.schemas import Predictions
from router.services.models import LoadedModels


class BatchView:
    """The current batch models over a request's allowed actions (one row per action)."""

    def __init__(
        self,
        *,
        loaded: LoadedModels,
        matrix: np.ndarray,
        allowed: Sequence[int],
        template_ranking: list[str],
        success: dict[int, float] | None = None,
    ) -> None:
        self.loaded = loaded
        self.matrix = matrix
        self.allowed = list(allowed)
        self.template_ranking = template_ranking
        self._success = {} if success is None else success  # by position, once predicted
        self.conservative_reason: str | None = None

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
        # One row per template among the allowed actions (its first allowed action).
        first: dict[str, int] = {}
        for position, index in enumerate(allowed):
            first.setdefault(catalog.actions[index].template.name, position)
        names = list(first)
        scores = models.rank_templates(matrix[list(first.values())])
        order = sorted(range(len(names)), key=lambda i: (-scores[i], names[i]))
        return cls(loaded=loaded, matrix=matrix, allowed=allowed,
                   template_ranking=[names[i] for i in order])

    def success(self, position: int) -> float:
        """The calibrated success probability of the action at ``position``."""
        found = self._success.get(position)
        if found is None:
            row = self.matrix[position : position + 1]
            found = self._success[position] = float(self.loaded.models.predict_success(row)[0])
        return found

    def subset(self, allowed: Sequence[int], kept: Sequence[int]) -> BatchView:
        """The same view restricted to ``kept`` (a subset of ``allowed``)."""
        where = {index: position for position, index in enumerate(allowed)}
        rows = [where[i] for i in kept]
        view = BatchView(
            loaded=self.loaded,
            matrix=self.matrix[rows],
            allowed=kept,
            template_ranking=self.template_ranking,
            success={new: self._success[old] for new, old in enumerate(rows)
                     if old in self._success},
        )
        view.conservative_reason = self.conservative_reason
        return view

    def predictions(self, position: int, estimate: CostEstimate) -> Predictions:
        models = self.loaded.models
        row = self.matrix[position : position + 1]
        low, median, high = models.predict_time(row)[0]
        return Predictions(
            success_probability=round(self.success(position), 4),
            quality=round(float(models.predict_quality(row)[0]), 3),
            complexity=round(float(models.predict_complexity(row)[0]), 2),
            time_s=round(float(median), 3),
            time_interval_s=(round(float(low), 3), round(float(high), 3)),
            cost_usd=round(estimate.cost_usd, 6),
            source=f"batch:{self.loaded.version}",
        )

    def contributions(self, position: int) -> list[Contribution]:
        return self.loaded.models.success_contributions(self.matrix[position])
