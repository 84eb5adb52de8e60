"""Batch models compiled to native code for serving (Treelite + TL2cgen), verified before use.

Why: a route call predicts all ~160 allowed actions with four tree ensembles and ranks the
templates. XGBoost's and LightGBM's own predictors spend most of that time walking tree data
structures and crossing the Python/C boundary (measured 2.5–4.5 ms per request on the default
catalog, `router bench-models`); the same trees compiled to C by TL2cgen predict the same rows in a
few hundred microseconds.

How: :func:`compile_models` turns each booster into a Treelite model, lets TL2cgen generate and
build a shared library (gcc and cmake are needed; without them serving keeps the libraries'
own predictors), and then **verifies** the library against the original booster on the probe
rows stored with the trained version. An output column that differs from the reference by a
constant (TL2cgen 1.0 applies the first base score to every target of a multi-quantile booster) is
corrected by that constant; any other difference larger than ``TOLERANCE`` rejects the library.
Libraries are cached by artifact digest, so a restart or a second worker reuses them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
TOLERANCE = 1e-4

logger = logging.getLogger(__name__)


class CompileError(RuntimeError):
    """The models could not be compiled, or a compiled library disagrees with its booster."""


class CompiledPredictor:
    """One compiled ensemble: raw outputs as ``(rows, targets)`` float64, corrected by
    per-target offsets found at verification."""

    def __init__(self, library: Path, offsets: FloatArray) -> None:
        import tl2cgen

        self.library = library
        self.offsets = offsets
        self._predictor = tl2cgen.Predictor(str(library), nthread=1)
        self._dmatrix = tl2cgen.DMatrix

    def raw(self, matrix: FloatArray | Rows) -> FloatArray:
        rows = matrix if isinstance(matrix, Rows) else Rows(matrix)
        out = np.asarray(self._predictor.predict(rows.dmatrix))
        result: FloatArray = out.reshape(rows.n, -1).astype(np.float64) - self.offsets
        return result


class Rows:
    """Rows converted once for several compiled predictors (a TL2cgen ``DMatrix``)."""

    def __init__(self, matrix: FloatArray) -> None:
        import tl2cgen

        data = np.ascontiguousarray(matrix, dtype=np.float32)
        self.n = len(data)
        self.dmatrix = tl2cgen.DMatrix(data, dtype="float32")


def _treelite_model(booster: Any) -> Any:
    import lightgbm as lgb
    import treelite

    if isinstance(booster, lgb.Booster):
        return treelite.frontend.from_lightgbm(booster)
    return treelite.frontend.from_xgboost(booster)


def _build(booster: Any, library: Path) -> None:
    import tl2cgen

    with tempfile.TemporaryDirectory(prefix="router-compile-") as tmp:
        built = Path(tmp) / library.name
        tl2cgen.export_lib(
            _treelite_model(booster),
            toolchain="gcc",
            libpath=str(built),
            params={"parallel_comp": 4},
            nthread=os.cpu_count() or 1,
        )
        partial = library.with_suffix(f".{os.getpid()}.partial")
        shutil.copyfile(built, partial)
        os.replace(partial, library)  # atomic: another worker never loads half a library


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


def compile_predictor(
    name: str,
    booster: Any,
    reference: Callable[[FloatArray], FloatArray],
    probe: FloatArray,
    directory: Path,
    digest: str,
) -> CompiledPredictor:
    """Compile (or reuse from ``directory``) one booster and verify it on ``probe``."""
    if len(probe) == 0:
        raise CompileError(f"{name}: no probe rows to verify the compiled library with")
    directory.mkdir(parents=True, exist_ok=True)
    library = directory / f"{digest[:24]}-{name}.so"
    if not library.exists():
        try:
            _build(booster, library)
        except Exception as exc:  # toolchain missing or failing: keep the boosters
            raise CompileError(f"{name}: compilation failed: {exc}") from exc
    predictor = CompiledPredictor(library, np.zeros(1))
    offsets = verified_offsets(predictor.raw(probe), reference(probe), name)
    predictor.offsets = offsets
    return predictor


class SaabasExplainer:
    """Per-feature contributions of one row to a booster's margin (the Saabas attribution that
    XGBoost's ``pred_contribs=True, approx_contribs=True`` computes), served from a table.

    A row's Saabas contributions depend only on the leaf it reaches in each tree: along the path,
    each split's feature receives the change of the node's cover-weighted mean value. So every
    (tree, node) gets its path's contribution vector once, here, and explaining a row is one
    leaf lookup (Treelite GTIL, no compiler needed) plus one gather-and-sum — about 0.05 ms
    against ~0.3–0.9 ms for building an XGBoost ``DMatrix`` and walking the trees again.
    """

    def __init__(self, booster: Any, n_features: int) -> None:
        import json

        self._model = _treelite_model(booster)
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

    def contributions(self, rows: FloatArray) -> FloatArray:
        """``(rows, features)`` contributions to the margin (the bias term left out)."""
        import treelite.gtil

        data = np.ascontiguousarray(np.atleast_2d(rows), dtype=np.float32)
        leaves = np.asarray(treelite.gtil.predict_leaf(self._model, data, nthread=1), np.intp)
        trees = np.arange(self.table.shape[0])
        result: FloatArray = self.table[trees[None, :], leaves].sum(axis=1)
        return result


def verified_explainer(
    booster: Any, n_features: int, reference: Callable[[FloatArray], FloatArray],
    probe: FloatArray,
) -> SaabasExplainer:
    """A :class:`SaabasExplainer` that reproduces ``reference`` (the booster's own
    contributions without the bias column) on ``probe`` within ``TOLERANCE`` of the margin."""
    if len(probe) == 0:
        raise CompileError("contributions: no probe rows to verify the explainer with")
    explainer = SaabasExplainer(booster, n_features)
    rows = probe[:64]
    worst = float(np.max(np.abs(explainer.contributions(rows) - reference(rows))))
    if not np.isfinite(worst) or worst > 1e-3:
        raise CompileError(f"contributions: table differs from the booster's by {worst:.3g}")
    return explainer


def artifact_digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
