"""Hold-out metrics of the batch models (scikit-learn where it has them).

Calibration error is the expected calibration error over 10 equal-width probability bins:
the bin-size-weighted mean of |mean predicted − observed rate|.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    brier_score_loss,
    log_loss,
    mean_absolute_error,
    ndcg_score,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)

FloatArray = npt.NDArray[np.float64]
CALIBRATION_BINS = 10
EPS = 1e-6


def expected_calibration_error(y: FloatArray, p: FloatArray, bins: int = CALIBRATION_BINS) -> float:
    if len(y) == 0:
        return math.nan
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += float(mask.sum()) * abs(float(p[mask].mean()) - float(y[mask].mean()))
    return total / len(y)


def classification_metrics(y: FloatArray, p: FloatArray) -> dict[str, float]:
    """AUC (NaN when the hold-out has one class), log-loss, Brier score, calibration error."""
    p = np.clip(p, EPS, 1 - EPS)
    auc = roc_auc_score(y, p) if len(np.unique(y)) == 2 else math.nan
    return {
        "auc": float(auc),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "calibration_error": float(expected_calibration_error(y, p)),
    }


def regression_metrics(y: FloatArray, pred: FloatArray) -> dict[str, float]:
    return {
        "mae": float(mean_absolute_error(y, pred)),
        "rmse": float(root_mean_squared_error(y, pred)),
        "r2": float(r2_score(y, pred)) if len(y) > 1 else math.nan,
    }


def pinball_loss(y: FloatArray, pred: FloatArray, alpha: float) -> float:
    diff = y - pred
    return float(np.mean(np.maximum(alpha * diff, (alpha - 1) * diff)))


def interval_metrics(
    y: FloatArray, low: FloatArray, mid: FloatArray, high: FloatArray, alphas: Sequence[float]
) -> dict[str, float]:
    """Coverage of [low, high], MAE of the median, mean pinball loss over the three quantiles
    (all in seconds)."""
    losses = [pinball_loss(y, q, a) for q, a in zip((low, mid, high), alphas, strict=True)]
    return {
        "coverage": float(np.mean((y >= low) & (y <= high))),
        "nominal_coverage": float(alphas[2] - alphas[0]),
        "mae": float(mean_absolute_error(y, mid)),
        "pinball": float(np.mean(losses)),
        "mean_width_s": float(np.mean(high - low)),
    }


def ndcg_at(groups: Sequence[tuple[FloatArray, FloatArray]], k: int = 3) -> float:
    """Mean NDCG@k over query groups of (relevance, score); groups of one item are skipped."""
    values = [
        float(ndcg_score(rel.reshape(1, -1), score.reshape(1, -1), k=k))
        for rel, score in groups
        if len(rel) > 1 and rel.max() > 0
    ]
    return float(np.mean(values)) if values else math.nan
