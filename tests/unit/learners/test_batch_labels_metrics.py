"""Batch labels (the difficulty score) and hold-out metrics, on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from learners.batch.labels import OutcomeLabels, difficulty_score
from learners.batch.metrics import (
    classification_metrics,
    expected_calibration_error,
    interval_metrics,
    ndcg_at,
    pinball_loss,
)
from learners.code_metrics import CodeMetrics
from learners.reward import Verdict


def code(cyclomatic: int, code_lines: int = 20) -> CodeMetrics:
    return CodeMetrics(
        language="python", method="python-ast", lines=code_lines, code_lines=code_lines,
        functions=1, classes=0, cyclomatic_complexity=cyclomatic,
        max_function_complexity=cyclomatic, type_hint_coverage=None, docstring_coverage=None,
        parse_error=False,
    )


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # Only failure (0) and regenerations (0) are known.
        (OutcomeLabels(verdict=Verdict.APPROVED), 0.0),
        # Rejected, 5 regenerations (capped at 3), quality 0: every component at 1.
        (OutcomeLabels(verdict=Verdict.REJECTED, regenerations=5, quality=0.0), 10.0),
        # (0.40·0.5 + 0.15·1/3 + 0.20·0.4) / 0.75 = 0.33 / 0.75 = 0.44
        (OutcomeLabels(verdict=Verdict.MODIFIED, regenerations=1, quality=6.0), 4.4),
        # Rejected without quality: (0.40·1 + 0.15·0) / 0.55
        (OutcomeLabels(verdict=Verdict.REJECTED), 7.2727),
        # Code with cyclomatic complexity 50: ln 51 / ln 51 = 1, weight 0.25 of 1.0
        (OutcomeLabels(verdict=Verdict.APPROVED, quality=10.0, code_metrics=code(50)), 2.5),
        # Complexity 4: ln 5 / ln 51 = 0.40934; (0.40·0.5 + 0.20·0.2 + 0.25·0.40934) / 1.0
        (OutcomeLabels(verdict=Verdict.MODIFIED, quality=8.0, code_metrics=code(4)), 3.4233),
        # Complexity beyond 50 is capped at 1.
        (OutcomeLabels(verdict=Verdict.APPROVED, quality=10.0, code_metrics=code(400)), 2.5),
        # Code without code lines tells nothing: the component is left out.
        (OutcomeLabels(verdict=Verdict.REJECTED, code_metrics=code(9, code_lines=0)), 7.2727),
    ],
)
def test_difficulty_score_by_hand(labels: OutcomeLabels, expected: float) -> None:
    assert difficulty_score(labels) == pytest.approx(expected, abs=1e-4)


def test_complexity_label_prefers_the_rating_and_success_means_approved() -> None:
    rated = OutcomeLabels(verdict=Verdict.REJECTED, regenerations=3, complexity_rating=2.0)
    assert rated.complexity == 2.0
    assert OutcomeLabels(verdict=Verdict.REJECTED).complexity == pytest.approx(7.2727)
    assert OutcomeLabels(verdict=Verdict.APPROVED).success == 1.0
    assert OutcomeLabels(verdict=Verdict.MODIFIED).success == 0.0
    assert OutcomeLabels(verdict=Verdict.REJECTED).success == 0.0


def test_expected_calibration_error_by_hand() -> None:
    y = np.array([0.0, 1.0, 1.0, 0.0])
    p = np.array([0.1, 0.15, 0.85, 0.95])
    # bins: [0.1, 0.15] -> |0.125 − 0.5|·2; [0.85] -> |0.85 − 1|; [0.95] -> |0.95 − 0|
    assert expected_calibration_error(y, p) == pytest.approx((0.75 + 0.15 + 0.95) / 4)


def test_expected_calibration_error_of_calibrated_and_edge_predictions() -> None:
    assert expected_calibration_error(np.array([0.0, 1.0]), np.array([0.5, 0.5])) == 0.0
    # p = 1.0 falls in the last bin, not outside the histogram.
    assert expected_calibration_error(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert expected_calibration_error(np.array([0.0]), np.array([1.0])) == 1.0
    assert math.isnan(expected_calibration_error(np.array([]), np.array([])))


def test_ndcg_at_3_by_hand() -> None:
    relevance = np.array([3.0, 2.0, 0.0, 1.0])
    scores = np.array([0.1, 0.9, 0.5, 0.2])
    # ranked: rel 2, 0, 1 -> DCG 2 + 0 + 1/log2(4); ideal 3, 2, 1 -> 3 + 2/log2(3) + 1/2
    expected = 2.5 / (3.0 + 2.0 / math.log2(3.0) + 0.5)
    assert ndcg_at([(relevance, scores)]) == pytest.approx(expected)
    perfect = (np.array([0.0, 3.0]), np.array([0.0, 1.0]))
    assert ndcg_at([(relevance, scores), perfect]) == pytest.approx((expected + 1.0) / 2)


def test_ndcg_skips_single_item_and_irrelevant_groups() -> None:
    single = (np.array([3.0]), np.array([0.5]))
    irrelevant = (np.array([0.0, 0.0]), np.array([0.2, 0.1]))
    reversed_pair = (np.array([0.0, 2.0]), np.array([1.0, 0.0]))
    # reversed pair: DCG 2/log2(3), ideal 2
    assert ndcg_at([single, irrelevant, reversed_pair]) == pytest.approx(1 / math.log2(3.0))
    assert math.isnan(ndcg_at([single, irrelevant]))


def test_pinball_loss_and_interval_metrics_by_hand() -> None:
    y = np.array([10.0, 2.0])
    assert pinball_loss(y, np.array([8.0, 4.0]), 0.9) == pytest.approx((0.9 * 2 + 0.1 * 2) / 2)
    metrics = interval_metrics(y, low=np.array([5.0, 3.0]), mid=np.array([9.0, 4.0]),
                               high=np.array([12.0, 6.0]), alphas=(0.1, 0.5, 0.9))
    assert metrics["coverage"] == 0.5  # 10 in [5, 12]; 2 not in [3, 6]
    assert metrics["nominal_coverage"] == pytest.approx(0.8)
    assert metrics["mae"] == pytest.approx(1.5)
    assert metrics["mean_width_s"] == pytest.approx(5.0)


def test_classification_metrics_survive_certain_predictions_and_one_class() -> None:
    y = np.array([1.0, 0.0, 1.0, 0.0])
    perfect = classification_metrics(y, np.array([1.0, 0.0, 1.0, 0.0]))
    assert perfect["auc"] == 1.0
    assert 0.0 < perfect["log_loss"] < 1e-5  # clipped, finite
    wrong = classification_metrics(y, np.array([0.0, 1.0, 0.0, 1.0]))
    assert math.isfinite(wrong["log_loss"])
    assert wrong["log_loss"] > 10.0
    assert wrong["brier"] == pytest.approx(1.0, abs=1e-5)
    one_class = classification_metrics(np.array([1.0, 1.0]), np.array([0.7, 0.9]))
    assert math.isnan(one_class["auc"])
    assert one_class["log_loss"] == pytest.approx(-(math.log(0.7) + math.log(0.9)) / 2)
