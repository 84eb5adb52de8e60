"""The native tree kernel (``learners/batch/forest.c``) against the boosters themselves: float32
thresholds, missing values, categories, shared-context rows and leaf indices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from learners.batch.compiled import SaabasExplainer, treelite_model
from learners.batch.models import CONTEXT_WIDTH, ranker_columns, with_popularity
from learners.batch.native import Kernel, NativeForest, build_kernel, float32_threshold
from learners.catalog import Catalog
from tests.support import Trained, holdout_matrix

FloatArray = npt.NDArray[np.float64]
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(value=finite, x=st.floats(allow_nan=False, width=32))
def test_float32_thresholds_keep_every_comparison(value: float, x: float) -> None:
    x32 = np.float32(x)
    assert (x32 < np.float32(float32_threshold(value, strict=True))) == (float(x32) < value)
    assert (x32 < np.float32(float32_threshold(value, strict=False))) == (float(x32) <= value)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Kernel:
    return Kernel(build_kernel(tmp_path_factory.mktemp("kernel")))


def with_missing_values(matrix: FloatArray, seed: int) -> FloatArray:
    """``matrix`` with a fifth of its cells (categorical codes included) set to NaN."""
    rng = np.random.default_rng(seed)
    rows = matrix.copy()
    rows[rng.random(rows.shape) < 0.2] = np.nan
    return rows


def test_forest_margins_equal_xgboost_s_with_missing_values_and_shared_contexts(
    trained: Trained, catalog: Catalog, kernel: Kernel
) -> None:
    models = trained[0]
    forest = NativeForest(kernel, [treelite_model(b) for b in (models.success, models.time)])
    request = holdout_matrix(models, trained[2], catalog, rows=1)  # one context, all actions
    for rows in (request, with_missing_values(request, 1),
                 with_missing_values(holdout_matrix(models, trained[2], catalog, rows=6), 2)):
        expected = np.column_stack([
            models.success.inplace_predict(rows, predict_type="margin"),
            models.time.inplace_predict(rows, predict_type="margin"),
        ])
        got = forest.predict(np.ascontiguousarray(rows, dtype=np.float32))
        # The base scores are included (TL2cgen 1.0 got the time model's wrong).
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_forest_scores_equal_lightgbm_s(trained: Trained, catalog: Catalog, kernel: Kernel
                                        ) -> None:
    models = trained[0]
    forest = NativeForest(kernel, [treelite_model(models.ranker)])
    matrix = holdout_matrix(models, trained[2], catalog, rows=3)
    rows = with_popularity(matrix[:, ranker_columns(models.encoder)], models.encoder,
                           models.template_popularity)
    got = forest.predict(np.ascontiguousarray(rows, dtype=np.float32))[:, 0]
    np.testing.assert_allclose(got, models._ranker_raw(rows), atol=1e-4)


def test_leaves_are_the_ones_treelite_finds(trained: Trained, catalog: Catalog, kernel: Kernel
                                            ) -> None:
    models = trained[0]
    forest = NativeForest(kernel, [treelite_model(models.success)])
    matrix = with_missing_values(holdout_matrix(models, trained[2], catalog, rows=1), 3)
    matrix[:, :CONTEXT_WIDTH] = matrix[:1, :CONTEXT_WIDTH]  # shared context: the skip path
    leaves = np.empty((len(matrix), forest.n_trees), dtype=np.int32)
    forest.predict(np.ascontiguousarray(matrix, dtype=np.float32), leaves)
    explainer = SaabasExplainer(models.success, len(models.encoder.columns))
    np.testing.assert_array_equal(forest.node_ids[leaves], explainer.leaves(matrix))


def test_rows_must_be_float32_and_wide_enough(trained: Trained, kernel: Kernel) -> None:
    forest = NativeForest(kernel, [treelite_model(trained[0].success)])
    with pytest.raises(ValueError, match="float32"):
        forest.predict(np.zeros((2, 37)))
    with pytest.raises(ValueError, match="columns"):
        forest.predict(np.zeros((2, 3), dtype=np.float32))


def test_the_kernel_is_compiled_once_per_source(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    first = build_kernel(tmp_path)
    monkeypatch.setenv("CC", "no-such-compiler")
    assert build_kernel(tmp_path) == first
