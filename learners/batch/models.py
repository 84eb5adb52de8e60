"""The five batch models as one artifact: success, complexity, generation time, quality and
template ranking, with vectorised prediction over a request's allowed actions.

Success, complexity, time and quality are XGBoost boosters (categorical columns native); time
is one multi-quantile booster (10%, 50%, 90% of log seconds), so an interval costs one call. The
success probability is calibrated by isotonic regression on the latest part of the training
window. Templates are ranked by a LightGBM ``lambdarank`` booster. Training lives in
:mod:`learners.batch.training`. The XGBoost models' predictions evaluate their trees with
Treelite's GTIL (:mod:`learners.batch.gtil`), all four in one call over their stacked trees
(:meth:`BatchModels.predict_rows`); the ranker uses LightGBM's own ``predict``.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Sequence

import lightgbm as lgb
import msgspec
import numpy as np
import numpy.typing as npt
import xgboost as xgb
from scipy.special import expit

from learners.batch.gtil import SaabasTable, predict, stack, treelite_model
from learners.reward import Outcome, RewardProfile, Verdict, compute_reward
from learners.sealed import Keyring
from learners.tabular import CONTEXT_CATEGORICAL, CONTEXT_NUMERIC, DESCRIPTIONS, TabularEncoder

FloatArray = npt.NDArray[np.float64]
QUANTILES = (0.1, 0.5, 0.9)
CONTEXT_WIDTH = len(CONTEXT_CATEGORICAL) + len(CONTEXT_NUMERIC)
RANKER_ACTION_COLUMNS = (
    "template",
    "prompt_tokens",
    "output_factor",
    "template_success",
    "template_quality",
    "template_n",
)


class ActionPredictions(msgspec.Struct, frozen=True):
    """Per-action predictions, aligned with the rows they were computed for."""

    success: list[float]
    quality: list[float]
    time_s: list[float]
    time_low_s: list[float]
    time_high_s: list[float]


class RowPredictions(msgspec.Struct, frozen=True):
    """Every XGBoost model's prediction for each row: calibrated P(approved), quality (0–10),
    generation time in seconds ``(rows, 3)`` (10%, 50% and 90% quantiles) and complexity."""

    success: FloatArray
    quality: FloatArray
    time_s: FloatArray
    complexity: FloatArray


class Contribution(msgspec.Struct, frozen=True):
    """One column's additive contribution to the success model's log-odds for one row."""

    column: str
    value: float
    log_odds: float
    category: str | None = None

    def describe(self) -> str:
        """The contribution in words, e.g. "model's recent success rate (0.42) lowers ..."."""
        name = DESCRIPTIONS.get(self.column, self.column.replace("_", " "))
        if self.category is not None:
            value = self.category
        else:
            value = "unknown" if math.isnan(self.value) else f"{self.value:.3g}"
        direction = "lowers" if self.log_odds < 0 else "raises"
        return f"{name} ({value}) {direction} the predicted success ({self.log_odds:+.2f} log-odds)"


def feature_types(categorical: Sequence[bool]) -> list[str]:
    return ["c" if c else "q" for c in categorical]


def ranker_columns(encoder: TabularEncoder) -> list[int]:
    columns = encoder.columns
    return [*range(CONTEXT_WIDTH), *(columns.index(c) for c in RANKER_ACTION_COLUMNS)]


RANKER_COLUMNS = ranker_columns(TabularEncoder(vocabularies={}))  # the layout is fixed


def template_popularity(names: list[str], successes: list[float]) -> dict[str, float]:
    """Each template's smoothed training success rate, (successes + 1) / (n + 2)."""
    totals: dict[str, list[float]] = {}
    for name, success in zip(names, successes, strict=True):
        totals.setdefault(name, []).append(success)
    return {name: (sum(v) + 1.0) / (len(v) + 2.0) for name, v in totals.items()}


def popularity_by_code(encoder: TabularEncoder, popularity: dict[str, float]) -> FloatArray:
    """Each template code's popularity, then one value for codes outside the vocabulary."""
    default = sum(popularity.values()) / len(popularity) if popularity else 0.5
    vocabulary = encoder.vocabularies["template"]
    return np.asarray([*(popularity.get(name, default) for name in vocabulary),
                       popularity.get("other", default)], dtype=np.float64)


def with_popularity(
    rows: FloatArray, encoder: TabularEncoder, popularity: dict[str, float]
) -> FloatArray:
    """Ranker rows (ranker columns) plus a last column: the template's training popularity,
    so the ranker starts from the popularity baseline and learns corrections to it."""
    return _append_popularity(rows, popularity_by_code(encoder, popularity))


def _append_popularity(rows: FloatArray, by_code: FloatArray) -> FloatArray:
    codes = rows[:, CONTEXT_WIDTH]
    other = len(by_code) - 1
    known = (codes >= 0) & (codes < other)  # False for NaN, which np.where replaces
    index = np.where(known, codes, other).astype(np.intp)
    out = np.empty((rows.shape[0], rows.shape[1] + 1), dtype=np.float64)
    out[:, :-1] = rows
    out[:, -1] = by_code[index]
    return out


class BatchModels:
    """One trained version of the five models and the encoder they were trained with."""

    def __init__(
        self,
        *,
        encoder: TabularEncoder,
        success: xgb.Booster,
        calibration: tuple[list[float], list[float]],
        complexity: xgb.Booster,
        time: xgb.Booster,
        quality: xgb.Booster,
        ranker: lgb.Booster,
        template_popularity: dict[str, float],
    ) -> None:
        self.encoder = encoder
        self.success = success
        self.calibration = calibration
        self.complexity = complexity
        self.time = time
        self.quality = quality
        self.ranker = ranker
        self.template_popularity = template_popularity
        self.use_threads(1)
        self._build_trees()

    def _build_trees(self) -> None:
        """What serving needs, built once per loaded version: the four XGBoost boosters
        stacked as one Treelite model (:func:`.gtil.stack`; targets: success, quality, the
        three time quantiles, complexity), the success trees' contribution table and the
        ranker's popularity by template code (the LightGBM ranker predicts itself)."""
        success = treelite_model(self.success)
        self._trees = stack([success, *(treelite_model(b) for b in
                                        (self.quality, self.time, self.complexity))])
        self._explainer = SaabasTable(success, len(self.encoder.columns))
        self._popularity = popularity_by_code(self.encoder, self.template_popularity)

    _PROCESS_STATE = ("_trees", "_explainer", "_popularity")

    def __getstate__(self) -> dict[str, object]:
        # Only the boosters are stored; their Treelite models are rebuilt on load.
        return {k: v for k, v in self.__dict__.items() if k not in self._PROCESS_STATE}

    def __setstate__(self, state: dict[str, object]) -> None:
        # Versions trained before the native kernel was removed carry its fields.
        for stale in ("probe", "compiled", "explainer"):
            state.pop(stale, None)
        self.__dict__.update(state)
        self._build_trees()

    def _margins(self, matrix: FloatArray) -> FloatArray:
        """``(rows, 6)`` raw outputs of the stacked models, one GTIL call."""
        return predict(self._trees, matrix, margin=True)

    @staticmethod
    def _probability(margins: FloatArray) -> FloatArray:
        # The success booster's logistic link, in float32 as its own predictor applies it.
        probability: FloatArray = expit(margins[:, _SUCCESS].astype(np.float32)).astype(
            np.float64)
        return probability

    def _success_raw(self, matrix: FloatArray) -> FloatArray:
        """Uncalibrated P(approved), as the success booster predicts it."""
        return self._probability(self._margins(matrix))

    def _ranker_raw(self, features: FloatArray) -> FloatArray:
        # LightGBM's own predictor: 0.04 ms for a request's rows, GTIL's 0.09 ms.
        return np.asarray(self.ranker.predict(features, num_threads=1), dtype=np.float64)

    def use_threads(self, threads: int) -> None:
        """Threads of the boosters' own predictors (not used by serving, see :mod:`.gtil`)."""
        for booster in (self.success, self.complexity, self.time, self.quality):
            booster.set_param({"nthread": threads})

    def calibrate(self, raw: FloatArray) -> FloatArray:
        xs, ys = self.calibration
        calibrated: FloatArray = np.interp(raw, xs, ys)
        return calibrated

    def predict_rows(self, matrix: FloatArray) -> RowPredictions:
        """All four XGBoost models' predictions for every row of ``matrix``, in one call."""
        margins = self._margins(matrix)
        return RowPredictions(
            success=self.calibrate(self._probability(margins)),
            quality=np.clip(margins[:, _QUALITY], 0.0, 10.0),
            time_s=np.exp(np.sort(margins[:, _TIME], axis=1)),
            complexity=np.clip(margins[:, _COMPLEXITY], 0.0, 10.0),
        )

    def predict_success(self, matrix: FloatArray) -> FloatArray:
        """Calibrated P(approved) of every row of ``matrix``."""
        return self.predict_rows(matrix).success

    def predict_quality(self, matrix: FloatArray) -> FloatArray:
        """Quality (0–10) of every row of ``matrix``."""
        return self.predict_rows(matrix).quality

    def predict_time(self, matrix: FloatArray) -> FloatArray:
        """Generation time in seconds, ``(rows, 3)``: the 10%, 50% and 90% quantiles."""
        return self.predict_rows(matrix).time_s

    def predict_actions(self, matrix: FloatArray) -> ActionPredictions:
        """Success, quality and time (median and 80% interval) for every row of ``matrix``."""
        rows = self.predict_rows(matrix)
        return ActionPredictions(
            success=rows.success.tolist(),
            quality=rows.quality.tolist(),
            time_s=rows.time_s[:, 1].tolist(),
            time_low_s=rows.time_s[:, 0].tolist(),
            time_high_s=rows.time_s[:, 2].tolist(),
        )

    def predicted_rewards(self, matrix: FloatArray, profile: RewardProfile,
                          costs_usd: Sequence[float] | None = None) -> FloatArray:
        """Expected reward of each row under ``profile``: P(success) × reward(approved) +
        (1 − P(success)) × reward(rejected), both at the predicted quality and median time and
        at the estimated cost when ``costs_usd`` is given (the models do not predict cost;
        without it the profile leaves cost out, as for a missing field)."""
        predicted = self.predict_actions(matrix)
        costs = costs_usd if costs_usd is not None else [None] * len(matrix)
        out = np.empty(len(matrix))
        for i, (p, quality, time_s, cost) in enumerate(
            zip(predicted.success, predicted.quality, predicted.time_s, costs, strict=True)
        ):
            approved = compute_reward(Outcome(Verdict.APPROVED, quality, time_s, cost), profile)
            rejected = compute_reward(Outcome(Verdict.REJECTED, quality, time_s, cost), profile)
            out[i] = p * approved + (1.0 - p) * rejected
        return out

    def predict_complexity(self, context: FloatArray) -> FloatArray:
        """Task complexity (0–10) from context columns, one value per row of ``context``."""
        # The complexity trees split on context columns only; GTIL fills the others with NaN.
        return self.predict_rows(np.atleast_2d(context)[:, :CONTEXT_WIDTH]).complexity

    def rank_templates(self, rows: FloatArray) -> FloatArray:
        """Ranking scores (higher is better) of full rows holding one action per template."""
        return self.rank_templates_columns(rows[:, RANKER_COLUMNS])

    def rank_templates_columns(self, rows: FloatArray) -> FloatArray:
        """Ranking scores of rows that hold only the ranker's columns."""
        return self._ranker_raw(_append_popularity(rows, self._popularity))

    def success_contributions(self, row: FloatArray, top: int = 3) -> list[Contribution]:
        """The ``top`` columns that move this row's success log-odds most (Saabas
        approximation of per-feature contributions, as XGBoost's ``approx_contribs``)."""
        contribs = self._explainer.contributions(row)[0]
        order = np.argsort(-np.abs(contribs))[:top]
        columns = self.encoder.columns
        return [
            Contribution(
                column=columns[i],
                value=float(row[i]),
                log_odds=float(contribs[i]),
                category=self.encoder.category(columns[i], float(row[i])),
            )
            for i in order
            if abs(contribs[i]) > 1e-6
        ]


# Targets of the stacked XGBoost models (BatchModels._build_trees), in order.
_SUCCESS, _QUALITY, _TIME, _COMPLEXITY = 0, 1, slice(2, 5), 5

ARTIFACT_FORMAT = "adaptive-router-batch-models/1"


class _Artifact(msgspec.Struct, frozen=True):
    format: str
    payload: bytes


def dump_models(models: BatchModels, keyring: Keyring) -> bytes:
    """Serialise ``models`` (pickle inside a versioned envelope), sealed with ``keyring``."""
    payload = pickle.dumps(models, protocol=pickle.HIGHEST_PROTOCOL)
    return keyring.seal(msgspec.msgpack.encode(_Artifact(format=ARTIFACT_FORMAT, payload=payload)))


def load_models(data: bytes, keyring: Keyring) -> BatchModels:
    """Inverse of :func:`dump_models`. The seal is verified before anything is decoded: an
    artifact not sealed with a secret of ``keyring`` raises :class:`SealError` unread."""
    artifact = msgspec.msgpack.decode(keyring.unseal(data), type=_Artifact)
    if artifact.format != ARTIFACT_FORMAT:
        raise ValueError(f"unknown artifact format {artifact.format!r}")
    models = pickle.loads(artifact.payload)  # authenticated by the seal above
    if not isinstance(models, BatchModels):
        raise ValueError("artifact does not hold batch models")
    models.use_threads(1)
    return models
