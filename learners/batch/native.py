"""Tree ensembles evaluated by a small native kernel (``forest.c``), with leaf indices.

Why not TL2cgen (used before): a route call predicts ~140 rows of one request with four
ensembles and then explains one row of the success model. TL2cgen's generated code tests every
split for every row, although about half of the tests on a row's path read context columns
that are the same in all rows of a request; each call builds a ``DMatrix`` in Python; and it
cannot return leaf indices, so the Saabas contributions needed a second walk (Treelite GTIL).
It also needs cmake and seconds of compilation per version. The kernel here is one fixed C file,
compiled once per machine in a fraction of a second (no per-model code generation). Per call it
finds the columns that are equal in every row, resolves the splits on them once (a backward pass
over the nodes), then walks the remaining splits tree by tree over all rows, eight rows side by
side, without a branch on the path, for several boosters at once; it can hand back the leaf each
row reached in each tree.

The arrays come from Treelite's JSON dump of each booster (the same for XGBoost and LightGBM).
Every forest is verified against the boosters before it is served
(:mod:`learners.batch.compiled`).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]

MAX_CATEGORY = 254  # category sets are 256 bits; bit 255 is the direction of a missing value
SET_WORDS = 4
MAX_DEPTH = 255  # the kernel counts steps in a byte
COMPILE_FLAGS = ("-O2", "-fPIC", "-shared")
NODE = np.dtype([("feature", np.int32), ("threshold", np.float32), ("child", np.int32),
                 ("info", np.uint32)])


class NativeError(RuntimeError):
    """The kernel cannot be built, or a booster holds something the kernel does not handle."""


class _Forest(ctypes.Structure):
    _fields_ = (
        ("n_trees", ctypes.c_int32),
        ("n_targets", ctypes.c_int32),
        ("n_features", ctypes.c_int32),
        ("n_nodes", ctypes.c_int32),
        ("root", ctypes.c_void_p),
        ("depth", ctypes.c_void_p),
        ("target", ctypes.c_void_p),
        ("nodes", ctypes.c_void_p),
        ("words", ctypes.c_void_p),
        ("value", ctypes.c_void_p),
    )


def _source() -> bytes:
    return resources.files("learners.batch").joinpath("forest.c").read_bytes()


def build_kernel(directory: Path) -> Path:
    """The kernel's shared library in ``directory``, compiled with gcc if not there yet
    (named by a hash of the source and flags, replaced atomically)."""
    source = _source()
    digest = hashlib.sha256(source + " ".join(COMPILE_FLAGS).encode()).hexdigest()[:16]
    library = directory / f"forest-{digest}.so"
    if library.exists():
        return library
    compiler = shutil.which(os.environ.get("CC", "gcc"))
    if compiler is None:
        raise NativeError("no C compiler (gcc) found")
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="router-forest-") as tmp:
        src = Path(tmp) / "forest.c"
        src.write_bytes(source)
        built = Path(tmp) / library.name
        result = subprocess.run(
            [compiler, *COMPILE_FLAGS, "-o", str(built), str(src), "-lm"],
            capture_output=True, text=True, check=False,
        )
        if result.returncode != 0:
            raise NativeError(f"compiling forest.c failed: {result.stderr.strip()[:500]}")
        partial = library.with_suffix(f".{os.getpid()}.partial")
        shutil.copyfile(built, partial)
        os.replace(partial, library)  # atomic: another worker never loads half a library
    return library


class Kernel:
    """The loaded kernel library."""

    def __init__(self, library: Path) -> None:
        self.library = library
        self._lib = ctypes.CDLL(str(library))
        self._predict = self._lib.forest_predict
        self._predict.restype = ctypes.c_int
        self._predict.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                                  ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
                                  ctypes.c_int32)


def float32_threshold(value: float, strict: bool) -> float:
    """The float32 threshold ``t`` with ``x < t`` ⇔ ``x < value`` (strict) or ``x <= value``
    for every float32 ``x`` (the kernel tests ``x < t`` on float32 rows; LightGBM's
    thresholds are float64 ``<=`` tests)."""
    with np.errstate(over="ignore"):  # beyond float32's range the threshold is ±inf: exact
        t = np.float32(value)
        up, down = np.float32(np.inf), np.float32(-np.inf)
        if strict:
            if float(t) < value:  # the smallest float32 >= value
                t = np.nextafter(t, up)
            return float(t)
        if float(t) > value:  # the largest float32 <= value, then just above it
            t = np.nextafter(t, down)
        return float(np.nextafter(t, up))


_LEAF = (0, math.nan, 0, 0)


def _category_set(categories: Sequence[int], *, right: bool, missing_right: bool) -> list[int]:
    """The 256-bit set of the codes that go right (bit 255: a missing value)."""
    listed: set[int] = set()
    for category in categories:
        if not 0 <= int(category) <= MAX_CATEGORY:
            raise NativeError(f"category {category} outside 0..{MAX_CATEGORY}")
        listed.add(int(category))
    goes_right = listed if right else set(range(MAX_CATEGORY + 1)) - listed
    if missing_right:
        goes_right.add(MAX_CATEGORY + 1)
    bits = [0] * SET_WORDS
    for category in goes_right:
        bits[category >> 6] |= 1 << (category & 63)
    return bits


class NativeForest:
    """One or more boosters flattened for ``forest_predict`` in ``forest.c``.

    Parameters
    ----------
    kernel
        The loaded kernel.
    models
        Treelite models; their targets are laid side by side (the first model's come first),
        and their base scores start the sums.
    features
        For each model, the row column of each of its features (``None``: the same index).
    """

    def __init__(self, kernel: Kernel, models: Sequence[Any],
                 features: Sequence[Sequence[int] | None] | None = None) -> None:
        self._kernel = kernel
        roots: list[int] = []
        depths: list[int] = []
        targets: list[int] = []
        nodes: list[tuple[int, float, int, int]] = []
        words: list[int] = [0] * SET_WORDS  # set 0: the empty set (numerical nodes, leaves)
        sets: dict[tuple[int, ...], int] = {tuple(words): 0}
        values: list[float] = []
        base: list[float] = []
        self.first_tree: list[int] = []  # per model: index of its first tree
        node_ids: list[int] = []  # per flattened node: its Treelite node id
        for m, model in enumerate(models):
            dump = json.loads(model.dump_as_json())
            if dump.get("average_tree_output"):
                raise NativeError("averaged tree outputs (random forests) are not supported")
            mapping = None if features is None else features[m]
            first_target = len(base)
            base.extend(float(b) for b in dump["base_scores"])
            self.first_tree.append(len(roots))
            for t, tree in enumerate(dump["trees"]):
                by_id = {node["node_id"]: node for node in tree["nodes"]}
                roots.append(len(nodes))
                targets.append(first_target + int(dump["target_id"][t]))
                order = [0]  # breadth first: the children of a node get adjacent slots
                depth = {0: 0}
                nodes.append(_LEAF)
                values.append(0.0)
                for node_id in order:
                    node = by_id[node_id]
                    i = len(node_ids)
                    node_ids.append(node_id)
                    if "leaf_value" in node:
                        leaf = node["leaf_value"]
                        values[i] = float(leaf[0] if isinstance(leaf, list) else leaf)
                        nodes[i] = (0, math.nan, i, 0)
                        continue
                    column = int(node["split_feature_id"])
                    column = column if mapping is None else int(mapping[column])
                    default_right = not node["default_left"]
                    if "category_list" in node:
                        bits = tuple(_category_set(node["category_list"],
                                                   right=node["category_list_right_child"],
                                                   missing_right=default_right))
                        info = sets.get(bits, len(words))
                        if info == len(words):  # a new set (many nodes share one)
                            sets[bits] = info
                            words.extend(bits)
                        threshold = math.nan
                    else:
                        info = int(default_right)
                        op = node["comparison_op"]
                        if op not in ("<", "<="):
                            raise NativeError(f"comparison {op!r} is not supported")
                        threshold = float32_threshold(float(node["threshold"]), strict=op == "<")
                    nodes[i] = (column, threshold, len(nodes), info)
                    for side in ("left_child", "right_child"):
                        order.append(node[side])
                        depth[node[side]] = depth[node_id] + 1
                        nodes.append(_LEAF)
                        values.append(0.0)
                depths.append(max(depth.values()))
                if depths[-1] > MAX_DEPTH:
                    raise NativeError(f"a tree deeper than {MAX_DEPTH} levels")
        self.node_ids: IntArray = np.asarray(node_ids, dtype=np.int32)
        self.n_trees = len(roots)
        self.n_targets = len(base)
        self.n_features = 1 + max((n[0] for n in nodes), default=0)
        self.base = np.asarray(base, dtype=np.float64)
        self._arrays = (
            np.asarray(roots, dtype=np.int32),
            np.asarray(depths, dtype=np.int32),
            np.asarray(targets, dtype=np.int32),
            np.asarray(nodes, dtype=NODE),
            np.asarray(words, dtype=np.uint64),
            np.asarray(values, dtype=np.float32),  # XGBoost's are; LightGBM's lose 1e-7
        )
        self._struct = _Forest(self.n_trees, self.n_targets, self.n_features, len(nodes),
                               *(a.ctypes.data for a in self._arrays))
        self._address = ctypes.addressof(self._struct)

    def predict(self, rows: npt.NDArray[np.float32], leaves: IntArray | None = None
                ) -> FloatArray:
        """Base scores plus leaf values, ``(rows, targets)``; with ``leaves`` (int32,
        ``(rows, k)`` for some ``k <= n_trees``), also the flattened index of the leaf each row
        reaches in each of the first ``k`` trees (:attr:`node_ids` maps it to Treelite's node
        id)."""
        if rows.dtype != np.float32 or not rows.flags.c_contiguous or rows.ndim != 2:
            raise ValueError("rows must be a C-contiguous 2-D float32 array")
        n, width = rows.shape
        if width < self.n_features:
            raise ValueError(f"rows have {width} columns, the trees use {self.n_features}")
        if leaves is not None and (leaves.ndim != 2 or leaves.shape[0] != n
                                   or leaves.shape[1] > self.n_trees
                                   or leaves.dtype != np.int32 or not leaves.flags.c_contiguous):
            raise ValueError(f"leaves must be C-contiguous int32 of shape ({n}, <= "
                             f"{self.n_trees})")
        out = np.empty((n, self.n_targets), dtype=np.float64)
        out[:] = self.base
        status = self._kernel._predict(self._address, rows.ctypes.data, n, width,
                                       out.ctypes.data,
                                       None if leaves is None else leaves.ctypes.data,
                                       0 if leaves is None else leaves.shape[1])
        if status != 0:
            raise MemoryError("forest_predict could not allocate its buffer")
        return out
