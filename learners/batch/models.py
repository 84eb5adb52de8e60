"""The five batch models as one artifact: success, complexity, generation time, quality and
template ranking, with vectorised prediction over a request's allowed actions.

Success, complexity, time and quality are XGBoost boosters (categorical columns native); time
is one multi-quantile booster (10%, 50%, 90% of log seconds), so an interval costs one call. The
success probability is calibrated by isotonic regression on the latest part of the training
window. Templates are ranked by a LightGBM ``lambdarank`` booster. Training lives in
:mod:`learners.batch.training`.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import lightgbm as lgb
import msgspec
import numpy as np
import numpy.typing as npt
import xgboost as xgb

from learners.batch.compiled import (
    CompiledPredictor,
    CompileError,
    SaabasExplainer,
    compile_predictor,
    treelite_model,
    verified_explainer,
)
from learners.batch.native import IntArray, Kernel, NativeError, build_kernel
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


class CompiledSet(msgspec.Struct, frozen=True):
    """Native predictors of one version's five ensembles (see
    :meth:`BatchModels.prepare_serving`): ``actions`` holds the success, quality, time and
    complexity trees together (outputs: success margin, quality, the three time quantiles,
    complexity; the success trees first, so their leaves come with the predictions), and a
    request's rows are predicted by all four in one call (complexity reads only the context,
    which the kernel resolves once per request)."""

    actions: CompiledPredictor
    complexity: CompiledPredictor
    ranker: CompiledPredictor


class ActionPredictions(msgspec.Struct, frozen=True):
    """Per-action predictions, aligned with the rows they were computed for."""

    success: list[float]
    quality: list[float]
    time_s: list[float]
    time_low_s: list[float]
    time_high_s: list[float]


class RequestPredictions(msgspec.Struct, frozen=True):
    """:meth:`BatchModels.predict_request`: per-action predictions, the task's complexity and
    (native kernel only) each row's success-tree leaves, for
    :meth:`BatchModels.success_contributions`."""

    actions: ActionPredictions
    complexity: float
    success_leaves: IntArray | None = None


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


def _sigmoid(margin: FloatArray) -> FloatArray:
    result: FloatArray = 1.0 / (1.0 + np.exp(-margin))
    return result


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


def with_popularity(
    rows: FloatArray, encoder: TabularEncoder, popularity: dict[str, float]
) -> FloatArray:
    """Ranker rows (ranker columns) plus a last column: the template's training popularity,
    so the ranker starts from the popularity baseline and learns corrections to it."""
    default = sum(popularity.values()) / len(popularity) if popularity else 0.5
    vocabulary = encoder.vocabularies["template"]
    # One value per template code, then one for codes outside the vocabulary ("other").
    by_code = np.asarray([*(popularity.get(name, default) for name in vocabulary),
                          popularity.get("other", default)], dtype=np.float64)
    codes = rows[:, CONTEXT_WIDTH]
    known = (codes >= 0) & (codes < len(vocabulary))  # False for NaN
    index = np.where(known, np.nan_to_num(codes), len(vocabulary)).astype(np.intp)
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
        probe: FloatArray | None = None,
    ) -> None:
        self.encoder = encoder
        self.success = success
        self.calibration = calibration
        self.complexity = complexity
        self.time = time
        self.quality = quality
        self.ranker = ranker
        self.template_popularity = template_popularity
        # Training rows kept to verify compiled libraries against the boosters.
        self.probe = probe if probe is not None else np.empty((0, len(encoder.columns)))
        self.compiled: CompiledSet | None = None
        self.explainer: SaabasExplainer | None = None
        self.use_threads(1)

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        # Native libraries and tables belong to a process, not to the artifact.
        state["compiled"] = state["explainer"] = None
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        state.setdefault("probe", np.empty((0, 0)))
        state.setdefault("compiled", None)
        state.setdefault("explainer", None)
        self.__dict__.update(state)

    def prepare_serving(self, directory: Path) -> list[str]:
        """Switch to the fast serving paths, each verified on :attr:`probe` against the
        boosters: the ensembles evaluated by the native kernel (:mod:`learners.batch.native`,
        compiled once per machine into ``directory``) and contributions from a Saabas table
        with the kernel's leaves (GTIL's without a compiler). Returns the reasons a path stays
        on the boosters' own predictors (empty when all are fast)."""
        probe = np.asarray(self.probe, dtype=np.float64)
        problems: list[str] = []
        try:
            self.compiled = self._compile(probe, Kernel(build_kernel(directory)))
        except (CompileError, NativeError, OSError) as exc:
            problems.append(f"native forests unavailable: {exc}")
        try:
            self.explainer = verified_explainer(
                self.success, len(self.encoder.columns), self._success_contributions_raw, probe,
                self._success_leaves if self.compiled is not None else None,
            )
        except CompileError as exc:
            problems.append(str(exc))
        return problems

    def _compile(self, probe: FloatArray, kernel: Kernel) -> CompiledSet:
        ranker_probe = with_popularity(probe[:, ranker_columns(self.encoder)], self.encoder,
                                       self.template_popularity)

        def one(name: str, boosters: Sequence[object],
                reference: Callable[[FloatArray], FloatArray], rows: FloatArray,
                shared: int) -> CompiledPredictor:
            models = [treelite_model(booster) for booster in boosters]
            return compile_predictor(name, models, reference, rows, kernel, shared)

        return CompiledSet(
            actions=one("success, quality, time and complexity",
                        (self.success, self.quality, self.time, self.complexity),
                        self._actions_raw, probe, CONTEXT_WIDTH),
            complexity=one("complexity", (self.complexity,), self._complexity_raw,
                           probe[:, :CONTEXT_WIDTH], 0),
            ranker=one("ranker", (self.ranker,), self._ranker_raw, ranker_probe, CONTEXT_WIDTH),
        )

    # Reference predictions of the boosters themselves (also the fallback without a compiler).
    def _success_raw(self, matrix: FloatArray) -> FloatArray:
        return np.asarray(self.success.inplace_predict(matrix), dtype=np.float64)

    def _success_margin(self, matrix: FloatArray) -> FloatArray:
        margin = self.success.inplace_predict(matrix, predict_type="margin")
        return np.asarray(margin, dtype=np.float64)

    def _actions_raw(self, matrix: FloatArray) -> FloatArray:
        """What :attr:`CompiledSet.actions` computes: success margin, quality, time,
        complexity."""
        return np.column_stack([self._success_margin(matrix), self._quality_raw(matrix),
                                self._time_raw(matrix),
                                self._complexity_raw(matrix[:, :CONTEXT_WIDTH])])

    def _success_leaves(self, rows: FloatArray) -> IntArray:
        """Treelite ids of the leaves ``rows`` reach in the success trees (native kernel)."""
        assert self.compiled is not None
        actions = self.compiled.actions
        leaves = actions.raw_with_leaves(np.atleast_2d(rows), actions.forest.first_tree[1])[1]
        return actions.node_ids(leaves)

    def _quality_raw(self, matrix: FloatArray) -> FloatArray:
        return np.asarray(self.quality.inplace_predict(matrix), dtype=np.float64)

    def _time_raw(self, matrix: FloatArray) -> FloatArray:
        out = np.asarray(self.time.inplace_predict(matrix), dtype=np.float64)
        return out.reshape(len(matrix), len(QUANTILES))

    def _complexity_raw(self, rows: FloatArray) -> FloatArray:
        return np.asarray(self.complexity.inplace_predict(rows), dtype=np.float64)

    def _ranker_raw(self, features: FloatArray) -> FloatArray:
        return np.asarray(self.ranker.predict(features, num_threads=1), dtype=np.float64)

    def use_threads(self, threads: int) -> None:
        """Serving predicts a few hundred rows per request: one thread avoids hand-off costs."""
        for booster in (self.success, self.complexity, self.time, self.quality):
            booster.set_param({"nthread": threads})

    def calibrate(self, raw: FloatArray) -> FloatArray:
        xs, ys = self.calibration
        calibrated: FloatArray = np.interp(raw, xs, ys)
        return calibrated

    def predict_success(self, matrix: FloatArray) -> FloatArray:
        compiled = self.compiled
        if compiled is None:
            return self.calibrate(self._success_raw(matrix))
        return self.calibrate(_sigmoid(compiled.actions.raw(matrix)[:, 0]))

    def predict_actions(self, matrix: FloatArray) -> ActionPredictions:
        """Success, quality and time (median and 80% interval) for every row of ``matrix``."""
        return self.predict_request(matrix).actions

    def predict_request(self, matrix: FloatArray) -> RequestPredictions:
        """:meth:`predict_actions`, the task's complexity (from the first row) and, with the
        native kernel, the success trees' leaves of every row, for the rows of one request
        (one context, several actions)."""
        compiled = self.compiled
        leaves: IntArray | None = None
        if compiled is not None:
            # One call for the four ensembles; the success trees come first.
            out, leaves = compiled.actions.raw_with_leaves(matrix,
                                                           compiled.actions.forest.first_tree[1])
            success = self.calibrate(_sigmoid(out[:, 0]))
            quality = out[:, 1]
            log_time = out[:, 2:5]
            complexity = float(np.clip(out[0, 5], 0.0, 10.0)) if len(out) else math.nan
        else:
            success = self.predict_success(matrix)
            quality = self._quality_raw(matrix)
            log_time = self._time_raw(matrix)
            complexity = float(self.predict_complexity(matrix[:1])[0]) if len(matrix) else math.nan
        quality = np.clip(quality, 0.0, 10.0)
        time = np.exp(np.sort(log_time, axis=1))
        actions = ActionPredictions(
            success=success.tolist(),
            quality=quality.tolist(),
            time_s=time[:, 1].tolist(),
            time_low_s=time[:, 0].tolist(),
            time_high_s=time[:, 2].tolist(),
        )
        return RequestPredictions(actions=actions, complexity=complexity, success_leaves=leaves)

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
        rows = np.atleast_2d(context)[:, :CONTEXT_WIDTH]
        compiled = self.compiled
        predicted = compiled.complexity.raw(rows)[:, 0] if compiled else self._complexity_raw(rows)
        clipped: FloatArray = np.clip(predicted, 0.0, 10.0)
        return clipped

    def rank_templates(self, rows: FloatArray) -> FloatArray:
        """Ranking scores (higher is better) of full rows holding one action per template."""
        return self.rank_templates_columns(rows[:, RANKER_COLUMNS])

    def rank_templates_columns(self, rows: FloatArray) -> FloatArray:
        """Ranking scores of rows that hold only the ranker's columns."""
        features = with_popularity(rows, self.encoder, self.template_popularity)
        compiled = self.compiled
        return compiled.ranker.raw(features)[:, 0] if compiled else self._ranker_raw(features)

    def _success_contributions_raw(self, rows: FloatArray) -> FloatArray:
        """XGBoost's own Saabas contributions (``approx_contribs``), bias column dropped."""
        matrix = xgb.DMatrix(
            np.atleast_2d(rows),
            feature_types=feature_types(self.encoder.categorical),
            enable_categorical=True,
            nthread=1,
        )
        contribs = self.success.predict(matrix, pred_contribs=True, approx_contribs=True)
        result: FloatArray = np.asarray(contribs, dtype=np.float64)[:, :-1]
        return result

    def success_contributions(self, row: FloatArray, top: int = 3,
                              leaves: IntArray | None = None) -> list[Contribution]:
        """The ``top`` columns that move this row's success log-odds most (Saabas
        approximation of per-feature contributions, as XGBoost's ``approx_contribs``);
        ``leaves``: the row's ``success_leaves`` from :meth:`predict_request`, if any."""
        explainer = self.explainer
        if explainer is None:
            contribs = self._success_contributions_raw(row)[0]
        elif leaves is not None and self.compiled is not None:
            contribs = explainer.contributions(row, self.compiled.actions.node_ids(leaves))[0]
        elif self.compiled is not None:
            contribs = explainer.contributions(row, self._success_leaves(row))[0]
        else:
            contribs = explainer.contributions(row)[0]
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
