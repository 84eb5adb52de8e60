"""The XGBoost models' trees evaluated by Treelite's GTIL, their one prediction path.

Why GTIL and not XGBoost's own predictors: a route call predicts one or two rows with each of
four XGBoost models, and ``inplace_predict`` costs a fixed ~0.1–0.2 ms per call (Python
argument handling, JSON configuration, a proxy matrix) and per-feature contributions need a
``DMatrix`` (~0.4 ms for one row); GTIL evaluates the same trees in ~0.05 ms per call
(``docs/decisions/batch-model-serving.md``). Most of a call is its fixed cost, so the four
models are stacked into one Treelite model (:func:`stack`) and a route predicts them all in
one call. The Treelite models are built in memory from the boosters when a version is loaded;
nothing is compiled, written or loaded from the file system.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import treelite
import treelite.gtil
import xgboost as xgb

FloatArray = npt.NDArray[np.float64]


def treelite_model(booster: xgb.Booster) -> treelite.Model:
    """The booster's trees as a Treelite model (in memory)."""
    return treelite.frontend.from_xgboost(booster)


def stack(models: Sequence[treelite.Model]) -> treelite.Model:
    """One Treelite model whose targets are the targets of ``models``, in order, as margins.

    Each model's trees keep their target (shifted past the targets of the models before it)
    and each target its base score, so a GTIL prediction of the stack equals the models' own
    raw predictions side by side. Nothing is post-processed: a sigmoid, for instance, is the
    caller's to apply. Every model must have scalar leaves (one target per tree).
    """
    target_ids: list[npt.NDArray[np.int32]] = []
    base_scores: list[npt.NDArray[np.float64]] = []
    for model in models:
        header = model.get_header_accessor()
        if list(header.get_field("leaf_vector_shape")) != [1, 1]:
            raise ValueError("only models with one output per tree can be stacked")
        offset = sum(len(b) for b in base_scores)
        target_ids.append(np.asarray(header.get_field("target_id"), np.int32) + offset)
        base_scores.append(np.asarray(header.get_field("base_scores"), np.float64))
    targets = sum(len(b) for b in base_scores)
    # Treelite concatenates trees of models whose headers agree, so each copy gets the
    # stack's header first.
    copies = []
    for model, target_id in zip(models, target_ids, strict=True):
        copy = treelite.Model.deserialize_bytes(model.serialize_bytes())
        header = copy.get_header_accessor()
        header.set_field("num_feature", np.asarray([max(m.num_feature for m in models)],
                                                   np.int32))
        header.set_field("task_type", np.asarray([_REGRESSOR], np.uint8))
        header.set_field("num_target", np.asarray([targets], np.int32))
        header.set_field("num_class", np.ones(targets, np.int32))
        header.set_field("target_id", target_id)
        header.set_field("base_scores", np.concatenate(base_scores))
        header.set_field("postprocessor", "identity")
        copies.append(copy)
    return treelite.Model.concatenate(copies)


_REGRESSOR = 1  # Treelite's TaskType::kRegressor: raw sums, one per target


def _rows(matrix: FloatArray) -> FloatArray:
    # GTIL converts to the model's input type, float32, as XGBoost itself does.
    return np.ascontiguousarray(np.atleast_2d(matrix), dtype=np.float64)


def predict(model: treelite.Model, matrix: FloatArray, *, margin: bool = False) -> FloatArray:
    """``(rows, targets)`` predictions of ``model`` (one thread: a request has a few rows)."""
    out = treelite.gtil.predict(model, _rows(matrix), nthread=1, pred_margin=margin)
    return np.asarray(out, dtype=np.float64).reshape(len(out), -1)


class SaabasTable:
    """Per-feature contributions of a row to an XGBoost model's margin: the Saabas attribution
    that XGBoost's ``pred_contribs=True, approx_contribs=True`` computes, from a table.

    A row's Saabas contributions depend only on the leaf it reaches in each tree: along the
    path, each split's feature receives the change of the node's cover-weighted mean value. So
    each (tree, node) gets its path's contribution vector once, here, and explaining a row is
    one GTIL leaf lookup plus one gather-and-sum.
    """

    def __init__(self, model: treelite.Model, n_features: int) -> None:
        self._model = model
        trees = json.loads(model.dump_as_json())["trees"]
        width = max(len(tree["nodes"]) for tree in trees)
        self._table = np.zeros((len(trees), width, n_features), dtype=np.float64)
        for t, tree in enumerate(trees):
            self._fill(self._table[t], {node["node_id"]: node for node in tree["nodes"]})

    @staticmethod
    def _fill(table: FloatArray, nodes: dict[int, dict[str, Any]]) -> None:
        means: dict[int, float] = {}

        def mean(node_id: int) -> float:
            node = nodes[node_id]
            if "leaf_value" in node:
                means[node_id] = float(node["leaf_value"])
            else:
                left, right = node["left_child"], node["right_child"]
                hl, hr = float(nodes[left]["sum_hess"]), float(nodes[right]["sum_hess"])
                ml, mr = mean(left), mean(right)
                total = hl + hr
                means[node_id] = (ml * hl + mr * hr) / total if total > 0 else (ml + mr) / 2
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

    def contributions(self, matrix: FloatArray) -> FloatArray:
        """``(rows, features)`` contributions to the margin (the bias term left out)."""
        leaves = treelite.gtil.predict_leaf(self._model, _rows(matrix), nthread=1)
        reached = np.asarray(leaves, dtype=np.intp)
        trees = np.arange(self._table.shape[0])
        result: FloatArray = self._table[trees[None, :], reached].sum(axis=1)
        return result
