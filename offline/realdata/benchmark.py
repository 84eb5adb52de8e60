"""The two protocols of the real-data benchmark and their report records.

- ``online``: every prompt of the subset, one pass in a random order per seed, each router
  starting from scratch.
- ``warm``: the subset's ``split=train`` prompts are the history (full information: every model's
  outcome on every prompt); online routers fold it in before routing the ``split=test`` prompts
  online, batch routers are trained on it. Train prompts whose text also occurs in the test split
  are dropped from the history unless ``keep_duplicates`` (the data set repeats 69 of its 100
  test code prompts in train).

Every row of a table is measured on the evaluation prompts: accuracy (mean score), mean
estimated cost per prompt, cost relative to the most accurate single model (in hindsight on
the evaluation prompts), the share of the gap between that model and the oracle that is closed,
and the zero-router hull's accuracy at the row's cost.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec
import numpy as np

from learners.bandit.vw_bandit import BanditSettings
from learners.catalog import Catalog
from offline.realdata.data import RealData, Subset, build_catalog, estimate_costs
from offline.realdata.frontier import (
    FloatArray,
    IntArray,
    Point,
    best_single,
    choice_point,
    hull_accuracy,
    oracle_choices,
    single_model_points,
    uniform_point,
    zero_router_hull,
)
from offline.realdata.harness import Workload, route_online, warm_start
from offline.realdata.policies import PolicyFactory
from offline.realdata.prompts import prompt_features
from offline.realdata.text_model import FEATURE_SETS, TextSuccessModel, choose_by_value

Protocol = Literal["online", "warm"]
Kind = Literal["router", "reference"]
COST_TARGET = 0.5  # the router's cost at most this share of the most accurate single model's
GAP_TARGET = 0.25  # share of the best-single → oracle accuracy gap to close (warm protocol)


class Measure(msgspec.Struct, frozen=True):
    """Mean and (population) standard deviation over runs (one run for deterministic rows)."""

    mean: float
    std: float
    runs: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Measure:
        array = np.asarray(values, dtype=np.float64)
        return cls(mean=float(array.mean()), std=float(array.std()), runs=len(array))


class PolicyRow(msgspec.Struct, frozen=True):
    policy: str
    kind: Kind
    accuracy: Measure
    cost_usd: Measure
    reward: Measure
    cost_ratio: float
    gap_closed: float
    hull_accuracy: float | None
    meets_accuracy_at_half_cost: bool


class LambdaTable(msgspec.Struct, frozen=True):
    lam: float
    rows: list[PolicyRow]


class ProtocolResult(msgspec.Struct, frozen=True):
    protocol: Protocol
    subset: Subset
    n_eval: int
    n_history: int
    dropped_duplicates: int
    seeds: list[int]
    models: list[str]
    single_models: list[Point]
    hull: list[Point]
    reference_model: str
    reference_accuracy: float
    reference_cost_usd: float
    oracle_accuracy: float
    tables: list[LambdaTable]


@dataclass(frozen=True)
class BenchmarkSpec:
    """What to run: data subset, λ values, seeds, online routers by name, cost assumption."""

    subset: Subset
    lambdas: list[float]
    seeds: list[int]
    policies: dict[str, PolicyFactory]
    bandit: BanditSettings
    output_tokens: int
    keep_duplicates: bool = False


@dataclass(frozen=True)
class _Frame:
    """Evaluation prompts and the figures every row is compared with."""

    workload: Workload
    single: list[Point]
    hull: list[Point]
    reference: int
    oracle_accuracy: float

    @classmethod
    def of(cls, workload: Workload) -> _Frame:
        single = single_model_points(workload.scores, workload.costs)
        reference = max(range(len(single)), key=lambda i: (single[i].accuracy, -single[i].cost))
        return cls(workload=workload, single=single, hull=zero_router_hull(single),
                   reference=reference,
                   oracle_accuracy=float(workload.scores.max(axis=1).mean()))

    def row(self, policy: str, kind: Kind, lam: float, points: Sequence[Point]) -> PolicyRow:
        accuracy = Measure.of([p.accuracy for p in points])
        cost = Measure.of([p.cost for p in points])
        reward = Measure.of([p.accuracy - lam * p.cost for p in points])
        ref = self.single[self.reference]
        gap = self.oracle_accuracy - ref.accuracy
        ratio = cost.mean / ref.cost
        return PolicyRow(
            policy=policy, kind=kind, accuracy=accuracy, cost_usd=cost, reward=reward,
            cost_ratio=ratio,
            gap_closed=(accuracy.mean - ref.accuracy) / gap if gap > 0 else 0.0,
            hull_accuracy=hull_accuracy(self.hull, cost.mean),
            meets_accuracy_at_half_cost=accuracy.mean >= ref.accuracy and ratio <= COST_TARGET,
        )

    def point(self, choices: IntArray) -> Point:
        return choice_point(self.workload.scores, self.workload.costs, choices)


def make_workload(data: RealData, subset: Subset, output_tokens: int) -> Workload:
    return Workload(ids=list(data.ids), features=prompt_features(data.prompts, subset),
                    scores=data.scores, costs=estimate_costs(data, output_tokens))


def _progress(message: str) -> None:
    print(f"bench-real: {message}", file=sys.stderr, flush=True)


def _reference_rows(frame: _Frame, models: list[str], lam: float) -> list[PolicyRow]:
    scores, costs = frame.workload.scores, frame.workload.costs
    best = best_single(scores, costs, lam)
    n = len(frame.workload)
    return [
        frame.row("oracle", "reference", lam, [frame.point(oracle_choices(scores, costs, lam))]),
        frame.row(f"best single, hindsight ({models[best]})", "reference", lam,
                  [frame.point(np.full(n, best, dtype=np.int64))]),
        frame.row("uniform", "reference", lam, [uniform_point(scores, costs)]),
    ]


def bandit_for_lambda(bandit: BanditSettings, lam: float,
                      workloads: Sequence[Workload]) -> BanditSettings:
    """``bandit`` with its reward range widened to what ``score − λ·cost`` can reach: scores
    lie in [0, 1], so the lowest reward is −λ times the dearest estimated cost. Only RegCB
    reads the range (it clips its confidence bounds to it)."""
    lowest = min(-lam * float(w.costs.max()) for w in workloads)
    if lowest >= bandit.min_reward:
        return bandit
    return msgspec.structs.replace(bandit, min_reward=lowest)


def _online_rows(frame: _Frame, catalog: Catalog, spec: BenchmarkSpec, lam: float,
                 history: Workload | None) -> list[PolicyRow]:
    rows = []
    bandit = bandit_for_lambda(
        spec.bandit, lam, [frame.workload] if history is None else [frame.workload, history])
    for name, factory in spec.policies.items():
        points = []
        for seed in spec.seeds:
            policy = factory(catalog, bandit, seed)
            if history is not None:
                warm_start(policy, catalog, history, lam, seed)
            choices = route_online(policy, catalog, frame.workload, lam, seed)
            close: Callable[[], None] | None = getattr(policy, "close", None)
            if close is not None:
                close()
            points.append(frame.point(choices))
            _progress(f"λ={lam:g} {name} seed {seed}: accuracy {points[-1].accuracy:.3f}")
        label = f"{name} (warm-started)" if history is not None else name
        rows.append(frame.row(label, "router", lam, points))
    return rows


def run_online(data: RealData, spec: BenchmarkSpec) -> ProtocolResult:
    """Every prompt of ``data`` routed online from scratch, once per seed and λ."""
    catalog = build_catalog(data)
    frame = _Frame.of(make_workload(data, spec.subset, spec.output_tokens))
    tables = []
    for lam in spec.lambdas:
        rows = _online_rows(frame, catalog, spec, lam, None)
        tables.append(LambdaTable(lam=lam, rows=rows + _reference_rows(frame, data.models, lam)))
    return _result("online", data, spec, frame, tables, n_history=0, dropped=0)


def run_warm(data: RealData, spec: BenchmarkSpec) -> ProtocolResult:
    """History = ``split=train``, evaluation = ``split=test`` (see the module docstring)."""
    catalog = build_catalog(data)
    test = data.split("test")
    train = data.split("train")
    history_data = train if spec.keep_duplicates else train.without_prompts_of(test)
    if len(test) == 0 or len(history_data) == 0:
        raise ValueError("the warm protocol needs prompts in both splits")
    frame = _Frame.of(make_workload(test, spec.subset, spec.output_tokens))
    history = make_workload(history_data, spec.subset, spec.output_tokens)
    predictions: dict[str, FloatArray] = {}
    for features in FEATURE_SETS:
        model = TextSuccessModel(features=features).fit(
            history_data.prompts, history.features, history.scores)
        predictions[features] = model.predict_success(test.prompts, frame.workload.features)
        _progress(f"batch model on {features} features trained on {len(history)} prompts")
    tables = []
    for lam in spec.lambdas:
        rows = _online_rows(frame, catalog, spec, lam, history)
        for feature_set, success in predictions.items():
            choices = choose_by_value(success, frame.workload.costs, lam)
            rows.append(frame.row(f"batch {feature_set}", "router", lam, [frame.point(choices)]))
        refs = _reference_rows(frame, data.models, lam)
        chosen = best_single(history.scores, history.costs, lam)
        refs.insert(2, frame.row(
            f"best single, chosen on train ({data.models[chosen]})", "reference", lam,
            [frame.point(np.full(len(test), chosen, dtype=np.int64))]))
        tables.append(LambdaTable(lam=lam, rows=rows + refs))
    return _result("warm", test, spec, frame, tables, n_history=len(history_data),
                   dropped=len(train) - len(history_data))


def _result(protocol: Protocol, data: RealData, spec: BenchmarkSpec, frame: _Frame,
            tables: list[LambdaTable], n_history: int, dropped: int) -> ProtocolResult:
    ref = frame.single[frame.reference]
    return ProtocolResult(
        protocol=protocol, subset=spec.subset, n_eval=len(data), n_history=n_history,
        dropped_duplicates=dropped, seeds=list(spec.seeds), models=list(data.models),
        single_models=frame.single, hull=frame.hull,
        reference_model=data.models[frame.reference], reference_accuracy=ref.accuracy,
        reference_cost_usd=ref.cost, oracle_accuracy=frame.oracle_accuracy, tables=tables,
    )


__all__ = ["COST_TARGET", "GAP_TARGET", "BenchmarkSpec", "LambdaTable", "Measure", "PolicyRow",
           "ProtocolResult", "bandit_for_lambda", "make_workload", "run_online", "run_warm"]
