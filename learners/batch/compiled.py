"""Batch models served by a native tree kernel, verified against the boosters before use.

Why: a route call predicts all ~140 allowed actions with three tree ensembles, predicts the
task's complexity, ranks the templates and explains the chosen action's success prediction.
XGBoost's and LightGBM's own predictors spend most of that time walking tree data structures
and crossing the Python/C boundary (2.5–4.5 ms per request on the default catalog, `router
bench-models`). :mod:`learners.batch.native` evaluates the same trees in one call per request
for success, quality, time and complexity together, tests the request's shared context columns
once instead of once per row, and returns the leaves that the Saabas contributions need.

How: :func:`compile_predictor` flattens boosters into a :class:`~learners.batch.native.NativeForest`
and **verifies** it against the boosters on the probe rows stored with the trained version, both
as stored (every column varies) and regrouped into request-like blocks that share one context
(the kernel's shared-column path). An output column that differs from the reference by a
constant is corrected by that constant; any other difference larger than ``TOLERANCE`` rejects
the forest, and the boosters keep serving. The kernel is one C file compiled once per machine
(gcc) into the compile directory; without a compiler the boosters serve.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from learners.batch.native import IntArray, Kernel, NativeError, NativeForest

FloatArray = npt.NDArray[np.float64]
TOLERANCE = 1e-4
REQUEST_ROWS = 32  # rows per request-like verification block

logger = logging.getLogger(__name__)


class CompileError(RuntimeError):
    """The models could not be compiled, or a native forest disagrees with its booster."""


class CompiledPredictor:
    """One flattened forest: raw outputs (margins) as ``(rows, targets)`` float64, corrected
    by per-target offsets found at verification."""

    def __init__(self, forest: NativeForest, offsets: FloatArray) -> None:
        self.forest = forest
        self.offsets = offsets

    def raw(self, matrix: npt.NDArray[np.floating[Any]], leaves: IntArray | None = None
            ) -> FloatArray:
        rows = np.ascontiguousarray(matrix, dtype=np.float32)
        result: FloatArray = self.forest.predict(rows, leaves) - self.offsets
        return result

    def raw_with_leaves(self, matrix: npt.NDArray[np.floating[Any]], trees: int
                        ) -> tuple[FloatArray, IntArray]:
        """:meth:`raw` and the kernel's index of the leaf each row reaches in each of the
        first ``trees`` trees, ``(rows, trees)`` (:meth:`node_ids` turns them into Treelite's
        node ids, which only the explained row needs)."""
        leaves = np.empty((len(matrix), trees), dtype=np.int32)
        return self.raw(matrix, leaves), leaves

    def node_ids(self, leaves: IntArray) -> IntArray:
        ids: IntArray = self.forest.node_ids[leaves]
        return ids


def treelite_model(booster: Any) -> Any:
    import lightgbm as lgb
    import treelite

    if isinstance(booster, lgb.Booster):
        return treelite.frontend.from_lightgbm(booster)
    return treelite.frontend.from_xgboost(booster)


def verified_offsets(compiled: FloatArray, reference: FloatArray, name: str) -> FloatArray:
    """Per-target constants ``c`` with ``compiled - c == reference`` within ``TOLERANCE``.

    Raises :class:`CompileError` when a column's difference is not constant (a real
    disagreement, not a base-score convention)."""
    reference = reference.reshape(len(reference), -1)
    if compiled.shape != reference.shape:
        raise CompileError(
            f"{name}: compiled output shape {compiled.shape} != reference {reference.shape}"
        )
    diff = compiled - reference
    offsets = np.median(diff, axis=0)
    worst = float(np.max(np.abs(diff - offsets))) if diff.size else 0.0
    if not np.isfinite(worst) or worst > TOLERANCE:
        raise CompileError(f"{name}: compiled predictions differ from the booster by {worst:.3g}")
    result: FloatArray = offsets.astype(np.float64)
    return result


def request_blocks(probe: FloatArray, shared: int) -> FloatArray:
    """The probe rows regrouped into blocks of ``REQUEST_ROWS`` that share the first row's
    first ``shared`` columns, like the rows of one request (one context, many actions)."""
    rows = np.array(probe, dtype=np.float64)
    for start in range(0, len(rows), REQUEST_ROWS):
        rows[start:start + REQUEST_ROWS, :shared] = rows[start, :shared]
    return rows


def compile_predictor(
    name: str,
    models: Sequence[Any],
    reference: Callable[[FloatArray], FloatArray],
    probe: FloatArray,
    kernel: Kernel,
    shared: int,
) -> CompiledPredictor:
    """Flatten ``models`` (Treelite models) into one native forest and verify it against
    ``reference`` on ``probe``, as stored and as request-like blocks sharing ``shared``
    leading columns."""
    if len(probe) == 0:
        raise CompileError(f"{name}: no probe rows to verify the native forest with")
    try:
        forest = NativeForest(kernel, models)
    except NativeError as exc:
        raise CompileError(f"{name}: {exc}") from exc
    predictor = CompiledPredictor(forest, np.zeros(forest.n_targets))
    offsets = verified_offsets(predictor.raw(probe), reference(probe), name)
    if shared:
        blocks = request_blocks(probe, shared)
        regrouped = verified_offsets(predictor.raw(blocks), reference(blocks), name)
        if not np.allclose(regrouped, offsets, atol=TOLERANCE):
            raise CompileError(f"{name}: shared-context predictions differ from the booster")
    predictor.offsets = offsets
    return predictor


class SaabasExplainer:
    """Per-feature contributions of one row to a booster's margin (the Saabas attribution that
    XGBoost's ``pred_contribs=True, approx_contribs=True`` computes), served from a table.

    A row's Saabas contributions depend only on the leaf it reaches in each tree: along the path,
    each split's feature receives the change of the node's cover-weighted mean value. So every
    (tree, node) gets its path's contribution vector once, here, and explaining a row is one
    leaf lookup (the native kernel's leaves, or Treelite GTIL without a compiler) plus one
    gather-and-sum.
    """

    def __init__(self, booster: Any, n_features: int) -> None:
        self._model = treelite_model(booster)
        trees = json.loads(self._model.dump_as_json())["trees"]
        width = max(len(tree["nodes"]) for tree in trees)
        self.table = np.zeros((len(trees), width, n_features), dtype=np.float64)
        for t, tree in enumerate(trees):
            self._fill(self.table[t], {node["node_id"]: node for node in tree["nodes"]})

    @staticmethod
    def _fill(table: FloatArray, nodes: dict[int, dict[str, Any]]) -> None:
        means: dict[int, float] = {}

        def mean(node_id: int) -> float:
            node = nodes[node_id]
            if "leaf_value" in node:
                means[node_id] = float(node["leaf_value"])
            else:
                left, right = node["left_child"], node["right_child"]
                mean(left)
                mean(right)
                hl, hr = float(nodes[left]["sum_hess"]), float(nodes[right]["sum_hess"])
                total = hl + hr
                means[node_id] = (
                    (means[left] * hl + means[right] * hr) / total if total > 0
                    else (means[left] + means[right]) / 2.0
                )
            return means[node_id]

        mean(0)
        stack = [0]
        while stack:  # each child's vector is its parent's plus the split's change
            node_id = stack.pop()
            node = nodes[node_id]
            if "leaf_value" in node:
                continue
            for child in (node["left_child"], node["right_child"]):
                table[child] = table[node_id]
                table[child, node["split_feature_id"]] += means[child] - means[node_id]
                stack.append(child)

    @property
    def n_trees(self) -> int:
        return int(self.table.shape[0])

    def leaves(self, rows: FloatArray) -> IntArray:
        """Node ids of the leaves ``rows`` reach, ``(rows, trees)``, by Treelite GTIL."""
        import treelite.gtil

        data = np.ascontiguousarray(np.atleast_2d(rows), dtype=np.float32)
        return np.asarray(treelite.gtil.predict_leaf(self._model, data, nthread=1), np.int32)

    def contributions(self, rows: FloatArray, leaves: IntArray | None = None) -> FloatArray:
        """``(rows, features)`` contributions to the margin (the bias term left out), from
        the leaves' node ids when given."""
        reached = self.leaves(rows) if leaves is None else np.atleast_2d(leaves)
        trees = np.arange(self.n_trees)
        result: FloatArray = self.table[trees[None, :], reached].sum(axis=1)
        return result


def verified_explainer(
    booster: Any, n_features: int, reference: Callable[[FloatArray], FloatArray],
    probe: FloatArray, leaves: Callable[[FloatArray], IntArray] | None = None,
) -> SaabasExplainer:
    """A :class:`SaabasExplainer` that reproduces ``reference`` (the booster's own
    contributions without the bias column) on ``probe`` within 1e-3 of the margin, with
    leaves from GTIL and, when given, from ``leaves`` (the native kernel's)."""
    if len(probe) == 0:
        raise CompileError("contributions: no probe rows to verify the explainer with")
    explainer = SaabasExplainer(booster, n_features)
    rows = probe[:64]
    expected = reference(rows)
    found = [explainer.contributions(rows)]
    if leaves is not None:
        found.append(explainer.contributions(rows, leaves(rows)))
    worst = max(float(np.max(np.abs(f - expected))) for f in found)
    if not np.isfinite(worst) or worst > 1e-3:
        raise CompileError(f"contributions: table differs from the booster's by {worst:.3g}")
    return explainer
