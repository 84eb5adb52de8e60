"""Serving the batch models: every prediction is the boosters' own up to float32 rounding
(Treelite GTIL evaluates the XGBoost trees), the contributions are XGBoost's Saabas contributions,
and no native code of ours is built or loaded (issue 16: a library planted in a shared
directory was loaded; the service test plants one)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import treelite.gtil
import xgboost as xgb

from learners.batch.gtil import predict, stack, treelite_model
from learners.batch.models import (
    CONTEXT_WIDTH,
    RANKER_COLUMNS,
    feature_types,
    with_popularity,
)
from learners.catalog import Catalog
from tests.support import Trained, holdout_matrix

ROOT = Path(__file__).resolve().parents[3]
# XGBoost and GTIL add the same float32 leaf values in different orders: a few float32 ulps.
FLOAT32_SUMS = 1e-5


def test_predictions_equal_the_boosters_own(trained: Trained, catalog: Catalog) -> None:
    models, _, holdout = trained
    matrix = holdout_matrix(models, holdout, catalog, rows=20)
    probability = np.asarray(models.success.inplace_predict(matrix), np.float64)
    success = models.calibrate(probability)
    quality = np.clip(models.quality.inplace_predict(matrix), 0.0, 10.0)
    log_time = np.sort(models.time.inplace_predict(matrix), axis=1)
    complexity = np.clip(models.complexity.inplace_predict(matrix[:, :CONTEXT_WIDTH]), 0, 10)
    ranker_rows = with_popularity(matrix[:, RANKER_COLUMNS], models.encoder,
                                  models.template_popularity)
    for rows in (slice(None), slice(7, 8)):  # all rows at once, and one row as a route does
        served = models.predict_actions(matrix[rows])
        np.testing.assert_allclose(models._success_raw(matrix[rows]), probability[rows], rtol=0,
                                   atol=1e-6)
        # The isotonic calibration has steep segments: 1e-7 in probability can move it 3e-5.
        np.testing.assert_allclose(served.success, success[rows], rtol=0, atol=1e-4)
        np.testing.assert_allclose(served.quality, quality[rows], rtol=0, atol=FLOAT32_SUMS)
        np.testing.assert_allclose(np.log(served.time_low_s), log_time[rows, 0], rtol=0,
                                   atol=FLOAT32_SUMS)
        np.testing.assert_allclose(np.log(served.time_s), log_time[rows, 1], rtol=0,
                                   atol=FLOAT32_SUMS)
        np.testing.assert_allclose(np.log(served.time_high_s), log_time[rows, 2], rtol=0,
                                   atol=FLOAT32_SUMS)
        np.testing.assert_allclose(models.predict_complexity(matrix[rows]), complexity[rows],
                                   rtol=0, atol=FLOAT32_SUMS)
        np.testing.assert_allclose(models.rank_templates(matrix[rows]),
                                   models.ranker.predict(ranker_rows[rows]), rtol=0, atol=1e-9)


def test_stacked_models_predict_each_models_own_outputs(trained: Trained, catalog: Catalog
                                                       ) -> None:
    """One GTIL call of the stack gives every model's raw outputs, side by side, exactly as
    each model's own GTIL call; complexity from full rows equals its context-only rows."""
    models, _, holdout = trained
    matrix = holdout_matrix(models, holdout, catalog, rows=5)
    parts = [treelite_model(b) for b in (models.success, models.quality, models.time,
                                         models.complexity)]
    stacked = predict(stack(parts), matrix, margin=True)
    own = np.hstack([predict(parts[0], matrix, margin=True), predict(parts[1], matrix),
                     predict(parts[2], matrix), predict(parts[3], matrix[:, :CONTEXT_WIDTH])])
    assert stacked.shape == (len(matrix), 6)
    np.testing.assert_array_equal(stacked, own)
    served = models.predict_rows(matrix)
    np.testing.assert_array_equal(served.success, models.calibrate(
        np.asarray(treelite.gtil.predict(parts[0], matrix, nthread=1), np.float64).ravel()))
    np.testing.assert_array_equal(served.complexity,
                                  models.predict_complexity(matrix[:, :CONTEXT_WIDTH]))


def test_only_scalar_leaf_models_are_stacked(trained: Trained) -> None:
    models = trained[0]
    ranker = treelite.frontend.from_lightgbm(models.ranker)
    ranker.get_header_accessor().set_field("leaf_vector_shape", np.asarray([2, 1], np.int32))
    with pytest.raises(ValueError, match="one output per tree"):
        stack([treelite_model(models.success), ranker])


def test_contributions_are_xgboosts_saabas_contributions(trained: Trained, catalog: Catalog
                                                         ) -> None:
    models, _, holdout = trained
    matrix = holdout_matrix(models, holdout, catalog, rows=3)
    data = xgb.DMatrix(matrix, feature_types=feature_types(models.encoder.categorical),
                       enable_categorical=True)
    expected = models.success.predict(data, pred_contribs=True, approx_contribs=True)[:, :-1]
    for row, contribs in zip(matrix, expected, strict=True):
        top = models.success_contributions(row, top=len(models.encoder.columns))
        assert top
        for c in top:
            assert abs(c.log_odds - contribs[models.encoder.columns.index(c.column)]) < 1e-4
        shown = {c.column for c in top}
        assert all(abs(v) <= 1e-6 for column, v in zip(models.encoder.columns, contribs,
                                                          strict=True) if column not in shown)


def test_no_native_code_is_built_or_loaded_by_the_packages() -> None:
    """No module of the service or the learners loads a shared library (``ctypes``, ``cffi``),
    and the learners package holds no C source to compile."""
    found: list[str] = []
    for package in ("router", "learners"):
        for path in sorted((ROOT / package).rglob("*")):
            if path.is_file() and path.suffix not in {".py", ".pyc", ".typed", ".ini", ".mako"}:
                found.append(str(path.relative_to(ROOT)))
            if path.suffix != ".py":
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                found += [f"{path.relative_to(ROOT)}: import {n}" for n in names
                          if n.split(".")[0] in {"ctypes", "cffi"}]
    assert found == []
