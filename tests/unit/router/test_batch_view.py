"""A route's batch view predicts the greedy and the chosen action together, when it is
computed; the predictions it serves are the models' own for each row, whichever rows were
predicted together, asked for later, or kept by the conservative strategy's subset."""

from __future__ import annotations

import numpy as np
import pytest

from learners.batch.training import History
from learners.catalog import Catalog
from learners.estimates import CostEstimate
from router.services.batch import BatchView
from router.services.models import LoadedModels
from tests.support import Trained
from tests.unit.learners.conftest import catalog, history, trained  # noqa: F401

ESTIMATE = CostEstimate(input_tokens=100, output_tokens=200, cost_usd=0.001, latency_s=5.0)


def _expected(view: BatchView, position: int) -> tuple[float, float, float, float, float,
                                                       float]:
    models = view.loaded.models
    row = view.matrix[position : position + 1]
    low, median, high = models.predict_time(row)[0]
    return (round(float(models.predict_success(row)[0]), 4),
            round(float(models.predict_quality(row)[0]), 3),
            round(float(models.predict_complexity(row[:, :22])[0]), 2),
            round(float(median), 3), round(float(low), 3), round(float(high), 3))


def _served(view: BatchView, position: int) -> tuple[float, float, float, float, float,
                                                     float]:
    p = view.predictions(position, ESTIMATE)
    return (p.success_probability, p.quality, p.complexity, p.time_s, *p.time_interval_s)


@pytest.mark.parametrize("needed", [(3, 40), (7, 7)])
def test_served_predictions_are_each_rows_own(
    trained: Trained, history: History, catalog: Catalog, needed: tuple[int, int],  # noqa: F811
) -> None:
    models, _, holdout = trained
    example = holdout.examples[0]
    allowed = catalog.indices_for_language(example.context.language)
    loaded = LoadedModels(version="v", models=models)
    view = BatchView.compute(loaded, example.context, example.history, catalog, allowed,
                             needed=needed)
    for position in (*needed, 11):  # 11 is predicted when asked for
        assert _served(view, position) == _expected(view, position)
        assert view.success(position) == pytest.approx(_expected(view, position)[0], abs=5e-5)
    assert view.template_ranking
    assert sorted(view.template_ranking) == sorted(
        {catalog.actions[i].template.name for i in allowed})
    kept = [allowed[i] for i in (needed[1], 2, 11)]
    subset = view.subset(allowed, kept)
    np.testing.assert_array_equal(subset.matrix, view.matrix[[needed[1], 2, 11]])
    for position in range(3):
        assert _served(subset, position) == _expected(subset, position)
