"""XGBoost fits for the batch models: hyper-parameters from a small grid scored by time-series
cross-validation on the training part (scikit-learn's ``TimeSeriesSplit``), stopped when the
run's search budget is spent; the number of trees from early stopping on the folds."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt
import xgboost as xgb
from sklearn.model_selection import TimeSeriesSplit

from learners.batch.settings import TrainSettings

FloatArray = npt.NDArray[np.float64]
# The grid points, tried in this order until the search budget is spent.
GRID: tuple[dict[str, float], ...] = (
    {"max_depth": 4, "eta": 0.1, "min_child_weight": 1.0},
    {"max_depth": 6, "eta": 0.1, "min_child_weight": 5.0},
    {"max_depth": 3, "eta": 0.2, "min_child_weight": 1.0},
    {"max_depth": 5, "eta": 0.05, "min_child_weight": 10.0},
)


class BoosterSearch:
    """XGBoost training with early-stopped tree counts and a budgeted grid search."""

    def __init__(self, settings: TrainSettings, types: list[str]) -> None:
        self.settings = settings
        self.types = types

    def matrix(self, x: FloatArray, y: FloatArray | None = None) -> xgb.DMatrix:
        return xgb.DMatrix(x, label=y, feature_types=self.types, enable_categorical=True,
                           nthread=self.settings.threads)

    def params(self, base: dict[str, object], grid: dict[str, float]) -> dict[str, object]:
        return {**base, **grid, "tree_method": "hist", "nthread": self.settings.threads,
                "seed": self.settings.seed, "max_cat_to_onehot": 1}

    def fit(self, base: dict[str, object], grid: dict[str, float], x: FloatArray, y: FloatArray,
            rounds: int, x_val: FloatArray | None = None,
            y_val: FloatArray | None = None) -> tuple[xgb.Booster, int, float]:
        train = self.matrix(x, y)
        if x_val is None or y_val is None:
            return xgb.train(self.params(base, grid), train, num_boost_round=rounds), rounds, 0.0
        valid = self.matrix(x_val, y_val)
        result: dict[str, dict[str, list[float]]] = {}
        booster = xgb.train(self.params(base, grid), train, num_boost_round=rounds,
                            evals=[(valid, "valid")], early_stopping_rounds=15,
                            evals_result=result, verbose_eval=False)
        best = int(booster.best_iteration) + 1
        scores = next(iter(result["valid"].values()))
        return booster, best, float(scores[best - 1])

    def search(self, base: dict[str, object], x: FloatArray, y: FloatArray,
               deadline: float) -> tuple[dict[str, float], int]:
        """Grid point and tree count with the best mean validation score over time folds."""
        folds = TimeSeriesSplit(n_splits=self.settings.folds)
        best: tuple[float, dict[str, float], int] | None = None
        for grid in GRID:
            if best is not None and time.monotonic() > deadline:
                break
            scores, rounds = [], []
            for train_idx, valid_idx in folds.split(x):
                _, n, score = self.fit(base, grid, x[train_idx], y[train_idx],
                                       self.settings.max_trees, x[valid_idx], y[valid_idx])
                scores.append(score)
                rounds.append(n)
            mean = float(np.mean(scores))
            if best is None or mean < best[0]:
                best = (mean, grid, max(1, int(np.mean(rounds))))
        assert best is not None
        return best[1], best[2]
