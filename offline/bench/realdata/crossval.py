"""Cross-validation for the batch routers: folds grouped by prompt text, out-of-fold success
probabilities, and λ chosen from them.

Folds are **grouped by prompt text**: the code prompts repeat 69 texts (train and test alike),
and a text whose outcomes are in the training folds would be memorised, not routed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from offline.bench.realdata.batch_routers import PromptInputs, SuccessModel
from offline.bench.realdata.text_model import choose_by_value

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
# λ values (score per USD) tried when λ is chosen by cross-validation.
CV_LAMBDAS = (0.0, 30.0, 100.0, 200.0, 300.0, 500.0, 1000.0)


def grouped_folds(texts: Sequence[str], folds: int, seed: int) -> list[IntArray]:
    """The rows of each of ``folds`` folds; equal texts share a fold. Distinct texts are dealt
    round-robin in a seeded random order."""
    distinct, group = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    if not 2 <= folds <= len(distinct):
        raise ValueError(f"{folds} folds need 2 <= folds <= {len(distinct)} distinct texts")
    order = np.random.default_rng([seed, 3]).permutation(len(distinct))
    fold_of_group = np.empty(len(distinct), dtype=np.int64)
    fold_of_group[order] = np.arange(len(distinct)) % folds
    fold_of_row = fold_of_group[group]
    return [np.flatnonzero(fold_of_row == f).astype(np.int64) for f in range(folds)]


def out_of_fold_success(create: Callable[[], SuccessModel], inputs: PromptInputs,
                        scores: FloatArray, folds: list[IntArray]) -> FloatArray:
    """P(success) of every (prompt, model), each row predicted by a model fitted on the other
    folds."""
    success = np.full(scores.shape, np.nan)
    everything = np.arange(len(inputs))
    for held_out in folds:
        train = np.setdiff1d(everything, held_out)
        model = create().fit(inputs.take(train), scores[train])
        success[held_out] = model.predict_success(inputs.take(held_out))
    if np.isnan(success).any():
        raise ValueError("the folds do not cover every prompt")
    return success


def choose_lambda(success: FloatArray, scores: FloatArray, costs: FloatArray,
                  cost_share: float, lambdas: Sequence[float] = CV_LAMBDAS) -> float:
    """The λ whose routing (by ``success``, out-of-fold) is the most accurate among those that
    cost at most ``cost_share`` of the most accurate single model; ties go to the cheaper. When
    no λ is that cheap, the cheapest λ."""
    reference = int(np.lexsort((costs.mean(axis=0), -scores.mean(axis=0)))[0])
    budget = cost_share * float(costs[:, reference].mean())
    rows = np.arange(len(scores))
    outcomes = []
    for lam in lambdas:
        choices = choose_by_value(success, costs, lam)
        outcomes.append((float(scores[rows, choices].mean()),
                         float(costs[rows, choices].mean()), lam))
    affordable = [o for o in outcomes if o[1] <= budget]
    if not affordable:
        return min(outcomes, key=lambda o: o[1])[2]
    return max(affordable, key=lambda o: (o[0], -o[1]))[2]


__all__ = ["CV_LAMBDAS", "choose_lambda", "grouped_folds", "out_of_fold_success"]
