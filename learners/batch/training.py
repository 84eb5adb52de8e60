"""Training and evaluation of the five batch models on a time-ordered history.

Every run splits the history by time: the latest ``holdout_fraction`` is the hold-out, never a
random split. Each model is compared with a trivial baseline on that hold-out (base rate,
training mean, unconditional quantiles, template popularity). The XGBoost models'
hyper-parameters and tree counts come from :mod:`learners.batch.boosting`.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

import lightgbm as lgb
import msgspec
import numpy as np
import numpy.typing as npt
import xgboost as xgb
from sklearn.isotonic import IsotonicRegression

from learners.batch.boosting import BoosterSearch
from learners.batch.labels import OutcomeLabels
from learners.batch.metrics import (
    classification_metrics,
    interval_metrics,
    ndcg_at,
    regression_metrics,
)
from learners.batch.models import (
    CONTEXT_WIDTH,
    QUANTILES,
    BatchModels,
    feature_types,
    ranker_columns,
    template_popularity,
    with_popularity,
)
from learners.batch.ranking import ranking_groups, split_groups
from learners.batch.report import ModelReport
from learners.batch.settings import TrainSettings
from learners.catalog import Catalog
from learners.tabular import TabularEncoder, TrainingExample

FloatArray = npt.NDArray[np.float64]
MODEL_NAMES = ("success", "complexity", "time", "quality", "templates")
# name -> (primary metric, lower is better)
PRIMARY: dict[str, tuple[str, bool]] = {
    "success": ("log_loss", True),
    "complexity": ("mae", True),
    "time": ("pinball", True),
    "quality": ("mae", True),
    "templates": ("ndcg_at_3", False),
}
# The success model beats the base rate only with a log-loss lower by this share: on a finite
# hold-out a model that learned nothing (outcomes independent of every feature) "beats" it by a
# hair (0.1-0.2 %) in about a third of seeded trials, and a gate without margin promotes it.
SUCCESS_MIN_GAIN = 0.01


class TrainingError(ValueError):
    """The history cannot train the models (too small, no outcome variety, ...)."""


class History(msgspec.Struct, frozen=True):
    """Logged decisions with outcomes, in time order."""

    examples: list[TrainingExample]
    labels: list[OutcomeLabels]
    times: list[datetime]

    def __len__(self) -> int:
        return len(self.examples)

    def split(self, holdout_fraction: float) -> tuple[History, History]:
        cut = len(self) - max(1, round(len(self) * holdout_fraction))
        return (
            History(self.examples[:cut], self.labels[:cut], self.times[:cut]),
            History(self.examples[cut:], self.labels[cut:], self.times[cut:]),
        )


class TrainingResult(msgspec.Struct, frozen=True):
    reports: dict[str, ModelReport]
    n_train: int
    n_holdout: int
    data_from: datetime
    data_to: datetime
    holdout_from: datetime
    seconds: float

    @property
    def beats_baselines(self) -> bool:
        return all(r.beats_baseline for r in self.reports.values())


def _better(value: float, reference: float, lower_is_better: bool) -> bool:
    if math.isnan(value):
        return False
    if math.isnan(reference):
        return True
    return value < reference if lower_is_better else value > reference


def _report(
    name: str, n_train: int, metrics: dict[str, float], baseline: dict[str, float],
    params: dict[str, float], n_holdout: int,
) -> ModelReport:
    primary, lower = PRIMARY[name]
    reference = baseline[primary] * (1 - SUCCESS_MIN_GAIN if name == "success" else 1)
    return ModelReport(
        name=name, n_train=n_train, n_holdout=n_holdout, metrics=metrics, baseline=baseline,
        primary=primary, lower_is_better=lower,
        beats_baseline=_better(metrics[primary], reference, lower), params=params,
    )


def _labels(history: History, pick: Callable[[OutcomeLabels], float | None]
            ) -> tuple[npt.NDArray[np.intp], FloatArray]:
    rows, values = [], []
    for i, labels in enumerate(history.labels):
        value = pick(labels)
        if value is not None and math.isfinite(value):
            rows.append(i)
            values.append(value)
    return np.asarray(rows, dtype=np.intp), np.asarray(values, dtype=np.float64)


def _positive_time(labels: OutcomeLabels) -> float | None:
    t = labels.generation_time_s
    return None if t is None or t <= 0 else math.log(t)


# --- evaluation -------------------------------------------------------------------------------


def evaluate(models: BatchModels, history: History) -> dict[str, dict[str, float]]:
    """Metrics of ``models`` on ``history`` (used for the candidate's hold-out and, in the
    promotion gate, for the current version on the same hold-out)."""
    matrix = models.encoder.training_matrix(history.examples)
    out: dict[str, dict[str, float]] = {}
    y = np.asarray([lab.success for lab in history.labels], dtype=np.float64)
    out["success"] = classification_metrics(y, models.predict_success(matrix))
    rows, values = _labels(history, lambda lab: lab.complexity)
    out["complexity"] = regression_metrics(values, models.predict_complexity(matrix[rows]))
    rows, values = _labels(history, lambda lab: lab.quality)
    quality = np.clip(np.asarray(models.quality.inplace_predict(matrix[rows]), np.float64), 0, 10)
    out["quality"] = regression_metrics(values, quality) if len(rows) else _nan_regression()
    rows, values = _labels(history, _positive_time)
    out["time"] = _time_metrics(models.time, matrix[rows], values)
    groups = ranking_groups(history, matrix, models.encoder)
    if groups.rows:
        scores = models.rank_templates_columns(np.asarray(groups.rows, dtype=np.float64))
        out["templates"] = {"ndcg_at_3": ndcg_at(split_groups(groups, scores)),
                            "groups": float(len(groups.sizes))}
    else:
        out["templates"] = {"ndcg_at_3": math.nan, "groups": 0.0}
    return out


def _nan_regression() -> dict[str, float]:
    return {"mae": math.nan, "rmse": math.nan, "r2": math.nan}


def _time_metrics(booster: xgb.Booster, x: FloatArray, log_y: FloatArray) -> dict[str, float]:
    if len(log_y) == 0:
        return {"coverage": math.nan, "nominal_coverage": 0.8, "mae": math.nan,
                "pinball": math.nan, "mean_width_s": math.nan}
    pred = np.sort(np.asarray(booster.inplace_predict(x), np.float64).reshape(len(x), 3), axis=1)
    q = np.exp(pred)
    return interval_metrics(np.exp(log_y), q[:, 0], q[:, 1], q[:, 2], QUANTILES)


# --- training ---------------------------------------------------------------------------------


def train_models(
    history: History, catalog: Catalog | None, settings: TrainSettings
) -> tuple[BatchModels, TrainingResult, History]:
    """Train all five on the older part of ``history``; report on the newest part.

    Returns the models, their reports and the hold-out (for the promotion gate).
    """
    started = time.monotonic()
    if len(history) < settings.min_examples:
        raise TrainingError(
            f"{len(history)} decisions with outcomes; training needs at least "
            f"{settings.min_examples}"
        )
    train, holdout = history.split(settings.holdout_fraction)
    encoder = TabularEncoder.fit(train.examples, catalog)
    types = feature_types(encoder.categorical)
    x = encoder.training_matrix(train.examples)
    booster = BoosterSearch(settings, types)
    context_booster = BoosterSearch(settings, types[:CONTEXT_WIDTH])
    per_model_budget = settings.search_budget_s / 4
    params: dict[str, dict[str, float]] = {}

    # success, calibrated on the latest part of the training window
    y = np.asarray([lab.success for lab in train.labels], dtype=np.float64)
    if len(np.unique(y)) < 2:
        raise TrainingError("every training outcome has the same success label")
    cut = int(len(x) * (1 - settings.calibration_fraction))
    base: dict[str, object] = {"objective": "binary:logistic", "eval_metric": "logloss"}
    grid, rounds = booster.search(base, x[:cut], y[:cut], time.monotonic() + per_model_budget)
    success, _, _ = booster.fit(base, grid, x[:cut], y[:cut], rounds)
    raw = np.asarray(success.inplace_predict(x[cut:]), dtype=np.float64)
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.01, y_max=0.99).fit(raw, y[cut:])
    calibration = ([float(v) for v in iso.X_thresholds_], [float(v) for v in iso.y_thresholds_])
    params["success"] = {**grid, "trees": float(rounds)}

    # complexity, from context columns only
    rows, values = _labels(train, lambda lab: lab.complexity)
    base = {"objective": "reg:squarederror", "eval_metric": "mae"}
    xc = x[rows][:, :CONTEXT_WIDTH]
    grid, rounds = context_booster.search(base, xc, values, time.monotonic() + per_model_budget)
    complexity, _, _ = context_booster.fit(base, grid, xc, values, rounds)
    params["complexity"] = {**grid, "trees": float(rounds)}

    # quality
    rows, values = _labels(train, lambda lab: lab.quality)
    if len(rows) < settings.min_examples // 2:
        raise TrainingError(f"only {len(rows)} training outcomes carry a quality score")
    grid, rounds = booster.search(base, x[rows], values, time.monotonic() + per_model_budget)
    quality, _, _ = booster.fit(base, grid, x[rows], values, rounds)
    params["quality"] = {**grid, "trees": float(rounds)}

    # time: one booster for three quantiles of log seconds
    rows, values = _labels(train, _positive_time)
    if len(rows) < settings.min_examples // 2:
        raise TrainingError(f"only {len(rows)} training outcomes carry a generation time")
    # Three quantiles triple the trees a prediction walks: shallow trees, and as many rounds as
    # early stopping on the newest fifth of the training rows asks for.
    base = {"objective": "reg:quantileerror", "quantile_alpha": np.asarray(QUANTILES)}
    grid = {"max_depth": 4, "eta": 0.2, "min_child_weight": 5.0}
    split = int(len(rows) * 0.8)
    _, rounds, _ = booster.fit(base, grid, x[rows[:split]], values[:split], settings.max_trees,
                               x[rows[split:]], values[split:])
    time_model, _, _ = booster.fit(base, grid, x[rows], values, rounds)
    params["time"] = {**grid, "trees": float(rounds)}
    train_time_q = np.quantile(values, QUANTILES)

    # template ranking, from the popularity baseline plus context
    popularity = template_popularity([e.action.template for e in train.examples],
                                     [lab.success for lab in train.labels])
    groups = ranking_groups(train, x, encoder)
    if not groups.sizes:
        raise TrainingError("no task group has two templates with enough outcomes to rank")
    rank_rows = with_popularity(np.asarray(groups.rows), encoder, popularity)
    ranker = lgb.train(
        {"objective": "lambdarank", "verbose": -1, "num_threads": settings.threads,
         "seed": settings.seed, "min_data_in_leaf": 20, "num_leaves": 7,
         "learning_rate": 0.05, "lambdarank_truncation_level": 3, "eval_at": [3]},
        lgb.Dataset(rank_rows, label=groups.relevance, group=groups.sizes,
                    categorical_feature=[i for i, c in enumerate(
                        [encoder.categorical[c] for c in ranker_columns(encoder)]) if c]),
        num_boost_round=60,
    )
    params["templates"] = {"trees": 60.0, "num_leaves": 7.0, "learning_rate": 0.05}

    models = BatchModels(encoder=encoder, success=success, calibration=calibration,
                         complexity=complexity, time=time_model, quality=quality, ranker=ranker,
                         template_popularity=popularity)
    metrics = evaluate(models, holdout)
    baselines = _baselines(train, holdout, x, encoder, train_time_q)
    reports = {name: _report(name, len(train), metrics[name], baselines[name], params[name],
                             len(holdout)) for name in MODEL_NAMES}
    result = TrainingResult(
        reports=reports, n_train=len(train), n_holdout=len(holdout),
        data_from=history.times[0], data_to=history.times[-1],
        holdout_from=holdout.times[0], seconds=round(time.monotonic() - started, 2),
    )
    return models, result, holdout


def _baselines(train: History, holdout: History, x_train: FloatArray, encoder: TabularEncoder,
               time_q: FloatArray) -> dict[str, dict[str, float]]:
    """Trivial predictors on the hold-out: base rate, training means, unconditional time
    quantiles, templates ranked by their training success rate (popularity)."""
    out: dict[str, dict[str, float]] = {}
    y_train = np.asarray([lab.success for lab in train.labels], dtype=np.float64)
    y = np.asarray([lab.success for lab in holdout.labels], dtype=np.float64)
    out["success"] = classification_metrics(y, np.full(len(y), y_train.mean()))
    for name, pick in (("complexity", lambda lab: lab.complexity),
                       ("quality", lambda lab: lab.quality)):
        _, train_values = _labels(train, pick)
        _, values = _labels(holdout, pick)
        out[name] = (regression_metrics(values, np.full(len(values), train_values.mean()))
                     if len(values) else _nan_regression())
    _, log_times = _labels(holdout, _positive_time)
    q = np.exp(time_q)
    n = len(log_times)
    out["time"] = (interval_metrics(np.exp(log_times), np.full(n, q[0]), np.full(n, q[1]),
                                    np.full(n, q[2]), QUANTILES) if n else
                   {"pinball": math.nan})
    template_col = encoder.columns.index("template")
    rates: dict[float, list[float]] = defaultdict(list)
    for i, lab in enumerate(train.labels):
        rates[float(x_train[i, template_col])].append(lab.success)
    popularity = {code: (sum(v) + 1.0) / (len(v) + 2.0) for code, v in rates.items()}
    x_hold = encoder.training_matrix(holdout.examples)
    groups = ranking_groups(holdout, x_hold, encoder)
    position = ranker_columns(encoder).index(template_col)
    scores = np.asarray([popularity.get(row[position], 0.0) for row in groups.rows])
    out["templates"] = {"ndcg_at_3": ndcg_at(split_groups(groups, scores)) if groups.rows
                        else math.nan, "groups": float(len(groups.sizes))}
    return out


def compare(candidate: dict[str, dict[str, float]], current: dict[str, dict[str, float]],
            tolerance: float = 0.0) -> tuple[bool, list[str]]:
    """The promotion gate's rule on one hold-out: the candidate's success log-loss must be
    lower than the current version's, and no other model's primary metric may be worse by
    more than ``tolerance`` (relative). Returns the verdict and the reasons, in words."""
    reasons: list[str] = []
    ok = True
    for name in MODEL_NAMES:
        primary, lower = PRIMARY[name]
        new, old = candidate[name][primary], current[name][primary]
        if name == "success":
            passed = _better(new, old, lower)
        elif math.isnan(old):
            passed = True
        elif math.isnan(new):
            passed = False
        else:
            passed = new <= old * (1 + tolerance) if lower else new >= old * (1 - tolerance)
        verdict = "better" if _better(new, old, lower) else ("not worse" if passed else "worse")
        reasons.append(f"{name} {primary}: candidate {new:.4f} vs current {old:.4f} ({verdict})")
        ok = ok and passed
    return ok, reasons

