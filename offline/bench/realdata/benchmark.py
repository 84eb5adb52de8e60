"""The two protocols of the real-data benchmark and their report records.

- ``online``: every prompt of the subset, one pass in a random order per seed, each router
  starting from scratch.
- ``warm``: the subset's ``split=train`` prompts are the history (full information: every model's
  outcome on every prompt); online routers fold it in before routing the ``split=test`` prompts
  online, batch routers are trained on it. Train prompts whose text also occurs in the test split
  are dropped from the history unless ``keep_duplicates`` (the data set repeats 69 of its 100
  test code prompts in train).
- ``cv`` (:mod:`offline.bench.realdata.cv_protocol`): batch routers only, k-fold over every
  prompt of the subset, folds grouped by prompt text.

With prompt embeddings (``BenchmarkSpec.embed``), the embedding batch routers run too, and every
online policy runs a second time as ``NAME +emb`` with the embedding as VW context namespace
``E`` crossed with the model namespace (``-q EM``).

Every row of a table is measured on the evaluation prompts: accuracy (mean score), mean
estimated cost per prompt, cost relative to the most accurate single model (in hindsight on
the evaluation prompts), the share of the gap between that model and the oracle that is closed,
and the zero-router hull's accuracy at the row's cost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import msgspec
import numpy as np

from learners.bandit.settings import BanditSettings
from learners.catalog import Catalog
from offline.bench.realdata.batch_routers import BatchRouter, PromptInputs, batch_routers
from offline.bench.realdata.crossval import choose_lambda, grouped_folds, out_of_fold_success
from offline.bench.realdata.data import RealData, Subset, build_catalog, estimate_costs
from offline.bench.realdata.frontier import (
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
from offline.bench.realdata.harness import Workload, route_online, warm_start
from offline.bench.realdata.policies import PolicyFactory
from offline.bench.realdata.prompts import prompt_features
from offline.bench.realdata.text_model import choose_by_value
from offline.progress import Bar

Protocol = Literal["online", "warm", "cv"]
Kind = Literal["router", "reference"]
COST_TARGET = 0.5  # the router's cost at most this share of the most accurate single model's
GAP_TARGET = 0.25  # share of the best-single → oracle accuracy gap to close (warm protocol)
EMBEDDING_NAMESPACE = "embedding"  # VW namespace letter E
EMBEDDING_INTERACTION = "EM"  # embedding × model
Embed = Callable[[list[str]], FloatArray]


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
    # Standard error of (accuracy − the reference model's accuracy), paired over the evaluation
    # prompts (mean over runs); None for reference rows.
    diff_se: float | None = None


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
    cv_lambda_rows: list[PolicyRow] = []  # batch routers at the λ chosen by CV on the history


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
    embed: Embed | None = None  # prompt texts → embeddings (the ``realdata`` extra)
    folds: int = 5  # cross-validation folds (λ by CV; the cv protocol)
    batch: tuple[str, ...] | None = None  # batch routers by name (None: every one that can run)
    progress: Bar | None = None  # advanced once per finished run


@dataclass(frozen=True)
class Frame:
    """Evaluation prompts and the figures every row is compared with."""

    workload: Workload
    embedded: Workload | None  # the same prompts with the embedding namespace, when computed
    single: list[Point]
    hull: list[Point]
    reference: int
    oracle_accuracy: float

    @classmethod
    def of(cls, workload: Workload, embedded: Workload | None = None) -> Frame:
        single = single_model_points(workload.scores, workload.costs)
        reference = max(range(len(single)), key=lambda i: (single[i].accuracy, -single[i].cost))
        return cls(workload=workload, embedded=embedded, single=single,
                   hull=zero_router_hull(single), reference=reference,
                   oracle_accuracy=float(workload.scores.max(axis=1).mean()))

    def routed(self, policy: str, lam: float, runs: Sequence[IntArray]) -> PolicyRow:
        """The row of a router from its choices (one array per run), with the paired standard
        error of its accuracy difference to the reference model."""
        scores = self.workload.scores
        rows = np.arange(len(self.workload))
        errors = [float(np.std(scores[rows, c] - scores[:, self.reference], ddof=1)
                        / np.sqrt(len(rows))) for c in runs]
        return self.row(policy, "router", lam, [self.point(c) for c in runs],
                        diff_se=float(np.mean(errors)))

    def row(self, policy: str, kind: Kind, lam: float, points: Sequence[Point],
            diff_se: float | None = None) -> PolicyRow:
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
            diff_se=diff_se,
        )

    def point(self, choices: IntArray) -> Point:
        return choice_point(self.workload.scores, self.workload.costs, choices)


def make_workload(data: RealData, subset: Subset, output_tokens: int) -> Workload:
    return Workload(ids=list(data.ids), features=prompt_features(data.prompts, subset),
                    scores=data.scores, costs=estimate_costs(data, output_tokens))


def with_embeddings(workload: Workload, vectors: FloatArray) -> Workload:
    """``workload`` whose features also carry ``vectors`` as the namespace
    :data:`EMBEDDING_NAMESPACE` (features ``e0``, ``e1``, ...)."""
    if vectors.shape[0] != len(workload):
        raise ValueError("one embedding per prompt")
    features = [
        msgspec.structs.replace(f, namespaces={
            **f.namespaces,
            EMBEDDING_NAMESPACE: {f"e{i}": round(float(v), 6) for i, v in enumerate(row)}})
        for f, row in zip(workload.features, vectors, strict=True)
    ]
    return Workload(ids=workload.ids, features=features, scores=workload.scores,
                    costs=workload.costs)


def prompt_inputs(data: RealData, workload: Workload, spec: BenchmarkSpec) -> PromptInputs:
    """What the batch routers read of ``data``'s prompts (embeddings when ``spec.embed``)."""
    return PromptInputs(prompts=list(data.prompts), features=workload.features,
                        embeddings=None if spec.embed is None else spec.embed(data.prompts))


def progress(spec: BenchmarkSpec, message: str) -> None:
    """A finished run: ``message`` on a line of its own (stderr) and the bar one step on."""
    if spec.progress is not None:
        spec.progress.log(f"bench-real: {message}")
        spec.progress.advance()


def reference_rows(frame: Frame, models: list[str], lam: float) -> list[PolicyRow]:
    """Oracle, best single model in hindsight and uniform choice on the evaluation prompts."""
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


def _online_rows(frame: Frame, catalog: Catalog, spec: BenchmarkSpec, lam: float,
                 history: Workload | None,
                 history_embedded: Workload | None = None) -> list[PolicyRow]:
    rows = []
    bandit = bandit_for_lambda(
        spec.bandit, lam, [frame.workload] if history is None else [frame.workload, history])
    variants: list[tuple[str, Workload, Workload | None, BanditSettings]] = [
        ("", frame.workload, history, bandit)]
    if frame.embedded is not None and (history is None or history_embedded is not None):
        crossed = msgspec.structs.replace(
            bandit, interactions=(*bandit.interactions, EMBEDDING_INTERACTION))
        variants.append((" +emb", frame.embedded, history_embedded, crossed))
    for name, factory in spec.policies.items():
        for suffix, workload, known, settings in variants:
            runs = []
            for seed in spec.seeds:
                policy = factory(catalog, settings, seed)
                if known is not None:
                    warm_start(policy, catalog, known, lam, seed)
                choices = route_online(policy, catalog, workload, lam, seed)
                close: Callable[[], None] | None = getattr(policy, "close", None)
                if close is not None:
                    close()
                runs.append(choices)
                progress(spec, f"λ={lam:g} {name}{suffix} seed {seed}: "
                          f"accuracy {frame.point(choices).accuracy:.3f}")
            label = f"{name}{suffix}" + (" (warm-started)" if history is not None else "")
            rows.append(frame.routed(label, lam, runs))
    return rows


def _embedded(data: RealData, workload: Workload, spec: BenchmarkSpec) -> Workload | None:
    return None if spec.embed is None else with_embeddings(workload, spec.embed(data.prompts))


def run_online(data: RealData, spec: BenchmarkSpec) -> ProtocolResult:
    """Every prompt of ``data`` routed online from scratch, once per seed and λ."""
    catalog = build_catalog(data)
    workload = make_workload(data, spec.subset, spec.output_tokens)
    frame = Frame.of(workload, _embedded(data, workload, spec))
    tables = []
    for lam in spec.lambdas:
        rows = _online_rows(frame, catalog, spec, lam, None)
        tables.append(LambdaTable(lam=lam, rows=rows + reference_rows(frame, data.models, lam)))
    return result_of("online", data, spec, frame, tables, n_history=0, dropped=0)


def lambda_by_cv_row(frame: Frame, router: BatchRouter, success: FloatArray,
                     history_inputs: PromptInputs, history: Workload,
                     spec: BenchmarkSpec) -> PolicyRow:
    """``router`` routing the evaluation prompts (``success``) at the λ chosen on the history
    alone: out-of-fold predictions over ``spec.folds`` text-grouped folds of the history, then
    :func:`offline.bench.realdata.crossval.choose_lambda` with the cost target."""
    folds = grouped_folds(history_inputs.prompts, spec.folds, seed=0)
    held_out = out_of_fold_success(router.create, history_inputs, history.scores, folds)
    lam = choose_lambda(held_out, history.scores, history.costs, COST_TARGET)
    choices = choose_by_value(success, frame.workload.costs, lam)
    return frame.routed(f"batch {router.name}, λ by CV ({lam:g})", lam, [choices])


def run_warm(data: RealData, spec: BenchmarkSpec) -> ProtocolResult:
    """History = ``split=train``, evaluation = ``split=test`` (see the module docstring)."""
    catalog = build_catalog(data)
    test = data.split("test")
    train = data.split("train")
    history_data = train if spec.keep_duplicates else train.without_prompts_of(test)
    if len(test) == 0 or len(history_data) == 0:
        raise ValueError("the warm protocol needs prompts in both splits")
    workload = make_workload(test, spec.subset, spec.output_tokens)
    frame = Frame.of(workload, _embedded(test, workload, spec))
    history = make_workload(history_data, spec.subset, spec.output_tokens)
    history_embedded = _embedded(history_data, history, spec)
    history_inputs = prompt_inputs(history_data, history, spec)
    test_inputs = prompt_inputs(test, workload, spec)
    predictions: dict[str, FloatArray] = {}
    cv_rows = []
    for router in batch_routers(spec.embed is not None, spec.batch):
        model = router.create().fit(history_inputs, history.scores)
        predictions[router.name] = model.predict_success(test_inputs)
        cv_rows.append(lambda_by_cv_row(frame, router, predictions[router.name],
                                        history_inputs, history, spec))
        progress(spec, f"batch {router.name} trained on {len(history)} prompts; "
                  f"{cv_rows[-1].policy}")
    tables = []
    for lam in spec.lambdas:
        rows = _online_rows(frame, catalog, spec, lam, history, history_embedded)
        for name, success in predictions.items():
            choices = choose_by_value(success, frame.workload.costs, lam)
            rows.append(frame.routed(f"batch {name}", lam, [choices]))
        refs = reference_rows(frame, data.models, lam)
        chosen = best_single(history.scores, history.costs, lam)
        refs.insert(2, frame.row(
            f"best single, chosen on train ({data.models[chosen]})", "reference", lam,
            [frame.point(np.full(len(test), chosen, dtype=np.int64))]))
        tables.append(LambdaTable(lam=lam, rows=rows + refs))
    return result_of("warm", test, spec, frame, tables, n_history=len(history_data),
                     dropped=len(train) - len(history_data), cv_lambda_rows=cv_rows)


def result_of(protocol: Protocol, data: RealData, spec: BenchmarkSpec, frame: Frame,
              tables: list[LambdaTable], n_history: int, dropped: int,
              cv_lambda_rows: list[PolicyRow] | None = None) -> ProtocolResult:
    """The report record of one protocol run."""
    ref = frame.single[frame.reference]
    return ProtocolResult(
        protocol=protocol, subset=spec.subset, n_eval=len(data), n_history=n_history,
        dropped_duplicates=dropped, seeds=list(spec.seeds), models=list(data.models),
        single_models=frame.single, hull=frame.hull,
        reference_model=data.models[frame.reference], reference_accuracy=ref.accuracy,
        reference_cost_usd=ref.cost, oracle_accuracy=frame.oracle_accuracy, tables=tables,
        cv_lambda_rows=cv_lambda_rows or [],
    )


__all__ = ["COST_TARGET", "EMBEDDING_INTERACTION", "EMBEDDING_NAMESPACE", "GAP_TARGET",
           "BenchmarkSpec", "Frame", "LambdaTable", "Measure", "PolicyRow", "ProtocolResult",
           "bandit_for_lambda", "lambda_by_cv_row", "make_workload", "progress", "prompt_inputs",
           "reference_rows", "result_of", "run_online", "run_warm", "with_embeddings"]
