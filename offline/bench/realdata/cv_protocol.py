"""The ``cv`` protocol: the batch routers cross-validated over every prompt of the subset.

An additional protocol, less noisy than the 100 test code prompts of ``warm``: the subset's
prompts (both splits) are cut into ``spec.folds`` folds grouped by prompt text; each fold is
routed by routers trained on the other folds, so every prompt is routed once, by a router that
has never seen its text. Accuracy and cost are then measured over all prompts. The λ-by-CV rows
choose λ per outer fold by an inner cross-validation on that fold's training prompts only.
Each seed deals the texts into folds anew: rows are mean ± std over seeds. Online policies are
not run here (the ``online`` protocol already routes every prompt).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from offline.bench.realdata.batch_routers import PromptInputs, SuccessModel, batch_routers
from offline.bench.realdata.benchmark import (
    COST_TARGET,
    BenchmarkSpec,
    Frame,
    LambdaTable,
    ProtocolResult,
    make_workload,
    progress,
    prompt_inputs,
    reference_rows,
    result_of,
)
from offline.bench.realdata.crossval import choose_lambda, grouped_folds, out_of_fold_success
from offline.bench.realdata.data import RealData
from offline.bench.realdata.frontier import IntArray
from offline.bench.realdata.harness import Workload
from offline.bench.realdata.text_model import choose_by_value


def _inner_lambdas(create: Callable[[], SuccessModel], inputs: PromptInputs,
                   workload: Workload, train: IntArray, spec: BenchmarkSpec, seed: int) -> float:
    """λ chosen by a cross-validation on the ``train`` rows only."""
    inner = grouped_folds([inputs.prompts[i] for i in train], spec.folds, seed=seed)
    success = out_of_fold_success(create, inputs.take(train), workload.scores[train], inner)
    return choose_lambda(success, workload.scores[train], workload.costs[train], COST_TARGET)


def run_crossval(data: RealData, spec: BenchmarkSpec) -> ProtocolResult:
    """Every prompt of ``data`` routed by batch routers trained on the other folds, once per
    seed of ``spec.seeds`` (each seed deals the texts into folds anew)."""
    workload = make_workload(data, spec.subset, spec.output_tokens)
    frame = Frame.of(workload)
    inputs = prompt_inputs(data, workload, spec)
    everything = np.arange(len(data))
    routers = batch_routers(spec.embed is not None, spec.batch)
    # runs[name][lam]: the choices of each seed; λ-by-CV runs under the key None.
    runs: dict[str, dict[float | None, list[IntArray]]] = {
        r.name: {lam: [] for lam in [*spec.lambdas, None]} for r in routers}
    chosen: dict[str, list[float]] = {r.name: [] for r in routers}
    for seed in spec.seeds:
        folds = grouped_folds(data.prompts, spec.folds, seed=seed)
        for router in routers:
            success = out_of_fold_success(router.create, inputs, workload.scores, folds)
            for lam in spec.lambdas:
                runs[router.name][lam].append(choose_by_value(success, workload.costs, lam))
            by_cv = np.full(len(data), -1, dtype=np.int64)
            for held_out in folds:
                lam = _inner_lambdas(router.create, inputs, workload,
                                     np.setdiff1d(everything, held_out), spec, seed + 1000)
                chosen[router.name].append(lam)
                by_cv[held_out] = choose_by_value(success[held_out], workload.costs[held_out],
                                                  lam)
            runs[router.name][None].append(by_cv)
            progress(spec, f"cv seed {seed}: {router.name} done")
    tables = []
    for lam in spec.lambdas:
        rows = [frame.routed(f"batch {r.name}", lam, runs[r.name][lam]) for r in routers]
        tables.append(LambdaTable(lam=lam, rows=rows + reference_rows(frame, data.models, lam)))
    cv_rows = []
    for router in routers:
        lams = chosen[router.name]
        span = f"{min(lams):g}" if min(lams) == max(lams) else f"{min(lams):g}-{max(lams):g}"
        label = f"batch {router.name}, λ by CV ({span})"
        cv_rows.append(frame.routed(label, float(np.mean(lams)), runs[router.name][None]))
    train_size = len(data) - min(len(f) for f in grouped_folds(data.prompts, spec.folds, 0))
    return result_of("cv", data, spec, frame, tables, n_history=train_size, dropped=0,
                     cv_lambda_rows=cv_rows)


__all__ = ["run_crossval"]
