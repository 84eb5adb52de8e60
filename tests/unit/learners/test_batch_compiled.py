"""Compiled serving of the batch models: native libraries and the Saabas contribution table
must reproduce the boosters exactly, be rejected when they don't, be reused from the cache, and
never be required (without a compiler the boosters serve)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from learners.batch import compiled as compiled_module
from learners.batch.compiled import CompileError, verified_offsets
from learners.batch.models import BatchModels, dump_models, load_models
from learners.catalog import Catalog
from tests.support import Trained, holdout_matrix


def fresh(trained: Trained) -> BatchModels:
    """An independent copy (the session fixture's models stay on the boosters)."""
    return load_models(dump_models(trained[0]))


@pytest.fixture(scope="module")
def served(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> BatchModels:
    models = fresh(trained)
    problems = models.prepare_serving(tmp_path_factory.mktemp("compiled"), "a" * 64)
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


def test_contribution_table_equals_xgboost_saabas_contributions(
    trained: Trained, served: BatchModels, catalog: Catalog
) -> None:
    reference = fresh(trained)
    assert served.explainer is not None
    matrix = holdout_matrix(reference, trained[2], catalog, rows=10)
    np.testing.assert_allclose(served.explainer.contributions(matrix),
                               reference._success_contributions_raw(matrix), atol=1e-4)
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
    def no_toolchain(booster: object, library: Path) -> None:
        raise FileNotFoundError("gcc")

    monkeypatch.setattr(compiled_module, "_build", no_toolchain)
    models = fresh(trained)
    problems = models.prepare_serving(tmp_path, "b" * 64)
    assert len(problems) == 1
    assert "compilation failed: gcc" in problems[0]
    assert models.compiled is None
    assert models.explainer is not None
    matrix = holdout_matrix(models, trained[2], catalog, rows=2)
    assert len(models.predict_actions(matrix).success) == len(matrix)


def test_libraries_are_reused_from_the_cache_and_never_pickled(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fresh(trained)
    assert first.prepare_serving(tmp_path, "c" * 64) == []
    built = sorted(p.name for p in tmp_path.iterdir())
    assert len(built) == 5
    assert all(name.startswith("c" * 24) for name in built)

    def must_not_build(booster: object, library: Path) -> None:
        raise AssertionError(f"{library} should come from the cache")

    monkeypatch.setattr(compiled_module, "_build", must_not_build)
    second = fresh(trained)
    assert second.prepare_serving(tmp_path, "c" * 64) == []
    assert second.compiled is not None
    reloaded = load_models(dump_models(second))
    assert reloaded.compiled is None
    assert reloaded.explainer is None
