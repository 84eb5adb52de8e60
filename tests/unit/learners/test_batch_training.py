"""Training the five batch models on a seeded synthetic history: reports against baselines,
prediction ranges, the artifact round trip, explanations, and the cases that must not pass
(one outcome class, pure-noise outcomes, a worse candidate).

The 6,000-row history and the models trained on it are session fixtures (this folder's
conftest); the training settings are ``tests.support.SETTINGS``.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from learners.batch.labels import OutcomeLabels
from learners.batch.models import dump_models, load_models
from learners.batch.training import (
    MODEL_NAMES,
    PRIMARY,
    History,
    TrainingError,
    compare,
    train_models,
)
from learners.catalog import Catalog
from learners.reward import Verdict
from learners.sealed import SealError
from tests.support import N_ROWS, SETTINGS, TEST_KEYRING, Trained, holdout_matrix


def test_every_report_has_metrics_and_a_baseline_on_a_time_ordered_holdout(
    trained: Trained, history: History
) -> None:
    _, result, holdout = trained
    assert set(result.reports) == set(MODEL_NAMES)
    assert result.n_train + result.n_holdout == N_ROWS
    assert result.n_holdout == round(N_ROWS * SETTINGS.holdout_fraction)
    assert holdout.times == history.times[-result.n_holdout:]
    assert result.holdout_from == holdout.times[0] >= history.times[result.n_train - 1]
    for name, report in result.reports.items():
        primary, lower = PRIMARY[name]
        assert (report.primary, report.lower_is_better) == (primary, lower)
        assert math.isfinite(report.metrics[primary]), name
        assert math.isfinite(report.baseline[primary]), name
        assert report.score == report.metrics[primary]
        assert report.n_train == result.n_train
        assert report.params, name
    assert {"auc", "log_loss", "brier", "calibration_error"} <= set(
        result.reports["success"].metrics)


def test_success_model_beats_the_base_rate(trained: Trained) -> None:
    report = trained[1].reports["success"]
    assert report.beats_baseline
    assert report.metrics["log_loss"] < report.baseline["log_loss"] - 0.01
    assert report.metrics["auc"] > 0.6
    assert math.isnan(report.baseline["auc"]) or report.baseline["auc"] == pytest.approx(0.5)


def test_predictions_are_in_range(trained: Trained, catalog: Catalog) -> None:
    models, _, holdout = trained
    matrix = holdout_matrix(models, holdout, catalog, rows=20)
    predictions = models.predict_actions(matrix)
    success = np.asarray(predictions.success)
    quality = np.asarray(predictions.quality)
    low, mid, high = (np.asarray(v) for v in (predictions.time_low_s, predictions.time_s,
                                              predictions.time_high_s))
    assert len(success) == len(matrix)
    assert ((success >= 0.0) & (success <= 1.0)).all()
    assert success.std() > 0.0  # the model tells actions apart
    assert ((quality >= 0.0) & (quality <= 10.0)).all()
    assert (low > 0.0).all()
    assert ((low <= mid) & (mid <= high)).all()
    complexity = models.predict_complexity(matrix)
    assert ((complexity >= 0.0) & (complexity <= 10.0)).all()


def test_dump_and_load_give_identical_predictions(trained: Trained, catalog: Catalog) -> None:
    models, _, holdout = trained
    matrix = holdout_matrix(models, holdout, catalog, rows=5)
    loaded = load_models(dump_models(models, TEST_KEYRING), TEST_KEYRING)
    assert loaded.encoder.spec_hash == models.encoder.spec_hash
    assert loaded.predict_actions(matrix) == models.predict_actions(matrix)
    np.testing.assert_array_equal(loaded.predict_complexity(matrix),
                                  models.predict_complexity(matrix))
    np.testing.assert_array_equal(loaded.rank_templates(matrix), models.rank_templates(matrix))


def test_load_refuses_unsealed_artifacts() -> None:
    with pytest.raises(SealError):
        load_models(b"not an artifact", TEST_KEYRING)


def test_success_contributions_name_columns_and_decode_categories(
    trained: Trained, catalog: Catalog
) -> None:
    models, _, holdout = trained
    encoder = models.encoder
    example = holdout.examples[0]
    indices = catalog.indices_for_language(example.context.language)
    matrix = encoder.matrix(example.context, example.history, catalog, indices)
    for row, index in zip(matrix[:10], indices[:10], strict=False):
        contributions = models.success_contributions(row, top=len(encoder.columns))
        assert contributions
        assert len(models.success_contributions(row, top=3)) <= 3
        sizes = [abs(c.log_odds) for c in contributions]
        assert sizes == sorted(sizes, reverse=True)
        for c in contributions:
            assert c.column in encoder.columns
            if encoder.categorical[encoder.columns.index(c.column)]:
                assert c.category is not None
                assert c.category in (*encoder.vocabularies[c.column], "other")
                assert f"({c.category})" in c.describe()
            else:
                assert c.category is None
        by_column = {c.column: c for c in contributions}
        action = catalog.actions[index]
        if "model" in by_column:
            assert by_column["model"].category == action.model.name
        if "template" in by_column:
            assert by_column["template"].category == action.template.name
    # Over these rows, the model choice matters somewhere and is named, not numbered.
    named = {c.category for row in matrix
             for c in models.success_contributions(row, top=len(encoder.columns))
             if c.column == "model"}
    assert named
    assert named <= {m.name for m in catalog.models}


@pytest.mark.parametrize("verdict", [Verdict.APPROVED, Verdict.REJECTED, Verdict.MODIFIED])
def test_a_single_outcome_class_cannot_train(
    history: History, catalog: Catalog, verdict: Verdict
) -> None:
    n = 600
    single = History(
        examples=history.examples[:n],
        labels=[msgspec.structs.replace(lab, verdict=verdict) for lab in history.labels[:n]],
        times=history.times[:n],
    )
    with pytest.raises(TrainingError, match="same success label"):
        train_models(single, catalog, SETTINGS)


def test_too_small_a_history_cannot_train(history: History, catalog: Catalog) -> None:
    n = SETTINGS.min_examples - 1
    small = History(history.examples[:n], history.labels[:n], history.times[:n])
    with pytest.raises(TrainingError, match=f"at least {SETTINGS.min_examples}"):
        train_models(small, catalog, SETTINGS)


def test_outcomes_that_are_pure_noise_never_beat_the_base_rate(
    history: History, catalog: Catalog
) -> None:
    # Shuffled labels are independent of every feature; on this seed the unmargined gate
    # let the success model "beat" the base rate by 0.2 % of log-loss.
    order = np.random.default_rng(101).permutation(len(history))
    labels: list[OutcomeLabels] = [history.labels[i] for i in order]
    noise = History(examples=history.examples, labels=labels, times=history.times)
    _, result, _ = train_models(noise, catalog, SETTINGS)
    report = result.reports["success"]
    assert not report.beats_baseline, (report.metrics, report.baseline)
    assert not result.beats_baselines  # such a version would never be promoted


def metrics(success_log_loss: float, others: float = 1.0, ndcg: float = 0.8
            ) -> dict[str, dict[str, float]]:
    out = {name: {PRIMARY[name][0]: others} for name in MODEL_NAMES}
    out["success"] = {"log_loss": success_log_loss}
    out["templates"] = {"ndcg_at_3": ndcg}
    return out


def test_compare_requires_a_lower_success_log_loss() -> None:
    worse, reasons = compare(metrics(0.60), metrics(0.55))
    assert not worse
    assert any(r.startswith("success log_loss") and "(worse)" in r for r in reasons)
    tied, _ = compare(metrics(0.55), metrics(0.55))
    assert not tied
    better, reasons = compare(metrics(0.50), metrics(0.55))
    assert better
    assert len(reasons) == len(MODEL_NAMES)


def test_compare_allows_other_models_to_be_worse_only_within_tolerance() -> None:
    current = metrics(0.55, others=1.0, ndcg=0.8)
    assert compare(metrics(0.50, others=1.015, ndcg=0.79), current, tolerance=0.02)[0]
    assert not compare(metrics(0.50, others=1.03), current, tolerance=0.02)[0]
    assert not compare(metrics(0.50, ndcg=0.7), current, tolerance=0.02)[0]
    assert not compare(metrics(0.50, others=math.nan), current)[0]
    assert compare(metrics(0.50), metrics(0.55, others=math.nan, ndcg=math.nan))[0]
