"""Batch-model predictions for one request, computed only for the actions the response needs.

A route call needs the success probability of the greedy action (the conservative strategy's
test) and, for the chosen action, its predictions and the success model's contributions; the
template ranking is logged with every decision. Predicting every allowed action would cost
more than the whole route without models (``router bench-models``), and most of a prediction
call is its fixed cost, so the greedy and the chosen action are predicted together, in one
call of the stacked models, when the view is computed; any other row when it is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np

from learners.batch.models import Contribution
from learners.catalog import Catalog
from learners.estimates import CostEstimate
from learners.features import ContextRecord
from learners.history import HistoryFeatures
from router.schemas import Predictions
from router.services.models import LoadedModels


class _Row(msgspec.Struct, frozen=True):
    """One action's predictions."""

    success: float
    quality: float
    time_s: tuple[float, float, float]
    complexity: float


class BatchView:
    """The current batch models over a request's allowed actions (one row per action)."""

    def __init__(
        self,
        *,
        loaded: LoadedModels,
        matrix: np.ndarray,
        allowed: Sequence[int],
        template_ranking: list[str],
        rows: dict[int, _Row] | None = None,
    ) -> None:
        self.loaded = loaded
        self.matrix = matrix
        self.allowed = list(allowed)
        self.template_ranking = template_ranking
        self._rows = {} if rows is None else rows  # by position, once predicted
        self.conservative_reason: str | None = None

    @classmethod
    def compute(
        cls,
        loaded: LoadedModels,
        record: ContextRecord,
        history: HistoryFeatures,
        catalog: Catalog,
        allowed: Sequence[int],
        needed: Sequence[int],
    ) -> BatchView:
        """The view, with the template ranking and the predictions of the actions at the
        positions ``needed`` (the greedy and the chosen one)."""
        models = loaded.models
        matrix = models.encoder.matrix(record, history, catalog, allowed)
        # One row per template among the allowed actions (its first allowed action).
        first: dict[str, int] = {}
        actions = catalog.actions
        for position, index in enumerate(allowed):
            first.setdefault(actions[index].template.name, position)
        names = list(first)
        scores = models.rank_templates(matrix[list(first.values())])
        order = sorted(range(len(names)), key=lambda i: (-scores[i], names[i]))
        view = cls(loaded=loaded, matrix=matrix, allowed=allowed,
                   template_ranking=[names[i] for i in order])
        view._predict(needed)
        return view

    def _predict(self, positions: Sequence[int]) -> None:
        wanted = sorted(set(positions) - self._rows.keys())
        if not wanted:
            return
        predicted = self.loaded.models.predict_rows(self.matrix[wanted])
        for i, position in enumerate(wanted):
            low, median, high = predicted.time_s[i].tolist()
            self._rows[position] = _Row(
                success=float(predicted.success[i]),
                quality=float(predicted.quality[i]),
                time_s=(low, median, high),
                complexity=float(predicted.complexity[i]),
            )

    def _row(self, position: int) -> _Row:
        self._predict([position])
        return self._rows[position]

    def success(self, position: int) -> float:
        """The calibrated success probability of the action at ``position``."""
        return self._row(position).success

    def subset(self, allowed: Sequence[int], kept: Sequence[int]) -> BatchView:
        """The same view restricted to ``kept`` (a subset of ``allowed``)."""
        where = {index: position for position, index in enumerate(allowed)}
        rows = [where[i] for i in kept]
        view = BatchView(
            loaded=self.loaded,
            matrix=self.matrix[rows],
            allowed=kept,
            template_ranking=self.template_ranking,
            rows={new: self._rows[old] for new, old in enumerate(rows) if old in self._rows},
        )
        view.conservative_reason = self.conservative_reason
        return view

    def predictions(self, position: int, estimate: CostEstimate) -> Predictions:
        row = self._row(position)
        low, median, high = row.time_s
        return Predictions(
            success_probability=round(row.success, 4),
            quality=round(row.quality, 3),
            complexity=round(row.complexity, 2),
            time_s=round(median, 3),
            time_interval_s=(round(low, 3), round(high, 3)),
            cost_usd=round(estimate.cost_usd, 6),
            source=f"batch:{self.loaded.version}",
        )

    def contributions(self, position: int) -> list[Contribution]:
        return self.loaded.models.success_contributions(self.matrix[position])
