"""The ``cv`` protocol: the batch routers cross-validated over every prompt of the subset.

An additional protocol, less noisy than the 100 test code prompts of ``warm``: the subset's
prompts (both splits) are cut into ``spec.folds`` folds grouped by prompt text; each fold is
routed by routers trained on the other folds, so every prompt is routed once, by a router that
has never seen its text. Accuracy and cost are then measured over all prompts. The λ-by-CV rows
choose λ per outer fold by an inner cross-validation on that fold's training prompts only.
Online policies are not run here (the ``online`` protocol already routes every prompt).
"""

from __future__ import annotations

import sys

import numpy as np

from offline.realdata.batch_routers import batch_routers
from offline.realdata.benchmark import (
    COST_TARGET,
    BenchmarkSpec,
    Frame,
    LambdaTable,
    PolicyRow,
    ProtocolResult,
    make_workload,
    prompt_inputs,
    reference_rows,
    result_of,
)
from offline.realdata.crossval import choose_lambda, grouped_folds, out_of_fold_success
from offline.realdata.data import RealData
from offline.realdata.frontier import FloatArray
from offline.realdata.text_model import choose_by_value


def run_crossval(data: RealData, spec: BenchmarkSpec) -> ProtocolResult:
    """Every prompt of ``data`` routed by batch routers trained on the other folds."""
    workload = make_workload(data, spec.subset, spec.output_tokens)
    frame = Frame.of(workload)
    inputs = prompt_inputs(data, workload, spec)
    folds = grouped_folds(data.prompts, spec.folds, seed=0)
    everything = np.arange(len(data))
    predictions: dict[str, FloatArray] = {}
    cv_rows: list[PolicyRow] = []
    for router in batch_routers(spec.embed is not None, spec.batch):
        success = out_of_fold_success(router.create, inputs, workload.scores, folds)
        predictions[router.name] = success
        # λ per outer fold, from an inner cross-validation on that fold's training prompts.
        choices = np.full(len(data), -1, dtype=np.int64)
        chosen: list[float] = []
        for held_out in folds:
            train = np.setdiff1d(everything, held_out)
            inner = grouped_folds([data.prompts[i] for i in train], spec.folds, seed=1)
            inner_success = out_of_fold_success(router.create, inputs.take(train),
                                                workload.scores[train], inner)
            lam = choose_lambda(inner_success, workload.scores[train], workload.costs[train],
                                COST_TARGET)
            chosen.append(lam)
            choices[held_out] = choose_by_value(success[held_out], workload.costs[held_out], lam)
        label = f"batch {router.name}, λ by CV ({'/'.join(f'{lam:g}' for lam in chosen)})"
        reward_lam = float(np.mean(chosen))
        cv_rows.append(frame.row(label, "router", reward_lam, [frame.point(choices)]))
        print(f"bench-real: cv {router.name} done; {label}", file=sys.stderr, flush=True)
    tables = []
    costs = workload.costs
    for lam in spec.lambdas:
        rows = [frame.row(f"batch {name}", "router", lam,
                          [frame.point(choose_by_value(success, costs, lam))])
                for name, success in predictions.items()]
        tables.append(LambdaTable(lam=lam, rows=rows + reference_rows(frame, data.models, lam)))
    train_size = len(data) - min(len(f) for f in folds)
    return result_of("cv", data, spec, frame, tables, n_history=train_size, dropped=0,
                     cv_lambda_rows=cv_rows)


__all__ = ["run_crossval"]
