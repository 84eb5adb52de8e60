"""Native serving of the batch models: the kernel's forests, its leaves and the Saabas
contribution table must reproduce the boosters exactly (also when a request's rows share their
context), be rejected when they don't, be built once per machine, and never be required
(without a compiler the boosters serve)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from learners.batch import native as native_module
from learners.batch.compiled import CompileError, request_blocks, verified_offsets
from learners.batch.models import CONTEXT_WIDTH, BatchModels, dump_models, load_models
from learners.catalog import Catalog
from tests.support import TEST_KEYRING, Trained, holdout_matrix


def fresh(trained: Trained) -> BatchModels:
    """An independent copy (the session fixture's models stay on the boosters)."""
    return load_models(dump_models(trained[0], TEST_KEYRING), TEST_KEYRING)


@pytest.fixture(scope="module")
def served(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> BatchModels:
    models = fresh(trained)
    problems = models.prepare_serving(tmp_path_factory.mktemp("compiled"))
    assert problems == []
    return models


def test_the_artifact_keeps_probe_rows_from_training(trained: Trained) -> None:
    models = trained[0]
    assert models.probe.shape == (512, len(models.encoder.columns))
    assert np.isfinite(models.probe[:, 0]).any()


def test_compiled_predictions_equal_the_boosters_on_unseen_rows(
    trained: Trained, served: BatchModels, catalog: Catalog
) -> None:
    reference = fresh(trained)
    assert reference.compiled is None
    assert served.compiled is not None
    matrix = holdout_matrix(reference, trained[2], catalog, rows=25)  # not the probe rows
    fast, slow = served.predict_actions(matrix), reference.predict_actions(matrix)
    for name in ("success", "quality", "time_s", "time_low_s", "time_high_s"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-4,
                                   atol=1e-4, err_msg=name)
    np.testing.assert_allclose(served.predict_complexity(matrix[:40]),
                               reference.predict_complexity(matrix[:40]), atol=1e-4)
    np.testing.assert_allclose(served.rank_templates(matrix[:8]),
                               reference.rank_templates(matrix[:8]), atol=1e-4)


def test_one_request_s_rows_sharing_a_context_are_predicted_as_by_the_boosters(
    trained: Trained, served: BatchModels, catalog: Catalog
) -> None:
    # The kernel tests columns equal in every row once per call: one hold-out context with
    # every allowed action is exactly that case, and the probe rows regrouped to share a
    # context cover other contexts.
    reference = fresh(trained)
    assert served.compiled is not None
    blocks = [holdout_matrix(reference, trained[2], catalog, rows=1),
              request_blocks(reference.probe, CONTEXT_WIDTH)[:32]]
    for block in blocks:
        context = block[:, :CONTEXT_WIDTH]
        np.testing.assert_array_equal(context, np.broadcast_to(context[:1], context.shape))
        fast_request, slow_request = served.predict_request(block), reference.predict_request(block)
        fast, fast_complexity = fast_request.actions, fast_request.complexity
        slow, slow_complexity = slow_request.actions, slow_request.complexity
        assert slow_request.success_leaves is None
        assert fast_request.success_leaves is not None
        for i in (0, len(block) // 2, len(block) - 1):  # risk factors from the call's leaves
            explained = served.success_contributions(
                block[i], leaves=fast_request.success_leaves[i]
            )
            expected = reference.success_contributions(block[i])
            assert [c.column for c in explained] == [c.column for c in expected]
            assert [c.log_odds for c in explained] == pytest.approx(
                [c.log_odds for c in expected], abs=1e-4
            )
        for name in ("success", "quality", "time_s", "time_low_s", "time_high_s"):
            np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-4,
                                       atol=1e-4, err_msg=name)
        assert fast_complexity == pytest.approx(slow_complexity, abs=1e-4)
        assert slow_complexity == pytest.approx(reference.predict_complexity(block[:1])[0])


def test_a_forest_that_disagrees_with_its_booster_is_rejected(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = native_module._category_set

    def wrong_sets(categories: list[int], *, right: bool, missing_right: bool) -> list[int]:
        return original(categories, right=not right, missing_right=missing_right)

    monkeypatch.setattr(native_module, "_category_set", wrong_sets)
    models = fresh(trained)
    problems = models.prepare_serving(tmp_path)
    assert len(problems) == 1
    assert "differ from the booster" in problems[0]
    assert models.compiled is None
    assert models.explainer is not None  # the GTIL leaves still explain


def test_contribution_table_equals_xgboost_saabas_contributions(
    trained: Trained, served: BatchModels, catalog: Catalog
) -> None:
    reference = fresh(trained)
    assert served.explainer is not None
    matrix = holdout_matrix(reference, trained[2], catalog, rows=10)
    expected = reference._success_contributions_raw(matrix)
    np.testing.assert_allclose(served.explainer.contributions(matrix), expected, atol=1e-4)
    native_leaves = served._success_leaves(matrix)
    np.testing.assert_array_equal(native_leaves, served.explainer.leaves(matrix))
    np.testing.assert_allclose(served.explainer.contributions(matrix, native_leaves), expected,
                               atol=1e-4)
    for row in matrix[:20]:
        fast, slow = served.success_contributions(row), reference.success_contributions(row)
        assert [c.column for c in fast] == [c.column for c in slow]
        assert [c.log_odds for c in fast] == pytest.approx([c.log_odds for c in slow], abs=1e-4)


def test_a_constant_offset_is_corrected_and_any_other_difference_rejected() -> None:
    reference = np.array([[1.0, 2.0], [3.0, 5.0], [0.5, -1.0]])
    offsets = verified_offsets(reference + np.array([0.0, 1.25]), reference, "time")
    np.testing.assert_allclose(offsets, [0.0, 1.25])
    wrong = reference.copy()
    wrong[1, 0] += 0.01
    with pytest.raises(CompileError, match=r"differ from the booster by 0\.01"):
        verified_offsets(wrong, reference, "success")
    with pytest.raises(CompileError, match="shape"):
        verified_offsets(reference[:, :1], reference, "success")


def test_without_a_compiler_the_boosters_serve_and_contributions_stay_fast(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, catalog: Catalog
) -> None:
    monkeypatch.setenv("CC", "no-such-compiler")
    models = fresh(trained)
    problems = models.prepare_serving(tmp_path)
    assert len(problems) == 1
    assert "no C compiler" in problems[0]
    assert models.compiled is None
    assert models.explainer is not None
    matrix = holdout_matrix(models, trained[2], catalog, rows=2)
    assert len(models.predict_actions(matrix).success) == len(matrix)
    assert models.success_contributions(matrix[0])


def test_the_kernel_is_built_once_and_forests_are_never_pickled(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fresh(trained)
    assert first.prepare_serving(tmp_path) == []
    built = sorted(p.name for p in tmp_path.iterdir())
    assert len(built) == 1
    assert built[0].startswith("forest-")
    assert built[0].endswith(".so")
    monkeypatch.setenv("CC", "no-such-compiler")  # a rebuild would fail
    second = fresh(trained)
    assert second.prepare_serving(tmp_path) == []
    assert second.compiled is not None
    reloaded = load_models(dump_models(second, TEST_KEYRING), TEST_KEYRING)
    assert reloaded.compiled is None
    assert reloaded.explainer is None
