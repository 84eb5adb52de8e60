"""Target policies: for every logged row, a probability over the evaluation's actions.

A policy answers :meth:`TargetPolicy.probabilities` with a (rows × actions) matrix whose rows
sum to 1 and the probability it gives the logged action (normally the matrix entry; the logged
policy on a log without full probability vectors knows only the propensity). Policies that need
the request (bandit snapshots, batch models, VW trained offline) live in their own modules.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from offline.history_file import HistoryFileError, read_chunks
from offline.replay.errors import ReplayError
from offline.replay.log import (
    MAX_REPORTED_ROWS,
    ActionSpace,
    FloatArray,
    LogChunk,
    LogError,
    LogSource,
    LogSummary,
)

SUM_TOLERANCE = 1e-6


@dataclass(frozen=True, eq=False)
class TargetProbabilities:
    matrix: FloatArray
    chosen: FloatArray


class TargetPolicy(Protocol):
    """What the evaluator asks of a target policy."""

    @property
    def name(self) -> str: ...

    def actions(self) -> Sequence[str]:
        """Actions the policy may choose that the log might not contain."""
        ...

    def prepare(self, space: ActionSpace, summary: LogSummary, source: LogSource) -> None:
        """Called once after the first pass (validate, load or train)."""
        ...

    def start(self) -> None:
        """Called before each pass over the log's chunks."""
        ...

    def probabilities(self, chunk: LogChunk, space: ActionSpace) -> TargetProbabilities: ...


class _Stateless:
    def actions(self) -> Sequence[str]:
        return ()

    def prepare(self, space: ActionSpace, summary: LogSummary, source: LogSource) -> None:
        return None

    def start(self) -> None:
        return None


def one_hot(index: np.ndarray, width: int) -> FloatArray:
    matrix = np.zeros((len(index), width), dtype=np.float64)
    matrix[np.arange(len(index)), index] = 1.0
    return matrix


def chosen_of(matrix: FloatArray, chunk: LogChunk) -> FloatArray:
    chosen: FloatArray = matrix[np.arange(len(chunk)), chunk.action]
    return chosen


class LoggedPolicy(_Stateless):
    """The policy that produced the log. With full logged probability vectors it is evaluated
    like any other policy. Without them (log files, ``router import``ed rows) only
    π(a_i|x_i) = p_i is known, so every weight is 1 and
    the direct method uses the logged action as its one-sample draw from the logging policy
    (dm_i = q̂(x_i, a_i)): every estimator then reduces to the mean logged reward."""

    name = "logged"

    def probabilities(self, chunk: LogChunk, space: ActionSpace) -> TargetProbabilities:
        sampled = one_hot(chunk.action, len(space))
        if chunk.logged is None:
            return TargetProbabilities(matrix=sampled, chosen=chunk.propensity)
        known = chunk.known_vectors()
        matrix = chunk.logged if known.all() else np.where(known[:, None], chunk.logged, sampled)
        return TargetProbabilities(matrix=matrix, chosen=chunk.propensity)


class UniformPolicy(_Stateless):
    """Uniform over the row's allowed actions when the log records them (the event log) or
    the catalog says them (a history file read with its context), otherwise over every action
    of the evaluation's action space."""

    name = "uniform"

    def probabilities(self, chunk: LogChunk, space: ActionSpace) -> TargetProbabilities:
        mask = chunk.allowed
        if mask is None and chunk.contexts is not None:
            mask = np.zeros((len(chunk), len(space)), dtype=bool)
            for i, context in enumerate(chunk.contexts):
                ids = np.asarray([context.catalog.actions[k].id for k in context.allowed],
                                 dtype=object)
                positions = space.index(ids)
                if (positions < 0).any():
                    raise ReplayError("uniform: the action space lacks the row's catalog")
                mask[i, positions] = True
        if mask is not None:
            weights = mask.astype(np.float64)
            matrix = weights / weights.sum(axis=1, keepdims=True)
        else:
            matrix = np.full((len(chunk), len(space)), 1.0 / len(space))
        return TargetProbabilities(matrix=matrix, chosen=chosen_of(matrix, chunk))


class FixedPolicy(_Stateless):
    """Always the same action."""

    def __init__(self, action: str) -> None:
        if not action:
            raise ReplayError("fixed:<action> needs an action id")
        self.action = action
        self.name = f"fixed:{action}"

    def prepare(self, space: ActionSpace, summary: LogSummary, source: LogSource) -> None:
        if self.action not in summary.counts:
            raise ReplayError(
                f"{self.name}: the log never chose {self.action!r}, so no estimator can "
                f"evaluate it from this log (known actions: {_some(summary.action_ids)})")

    def probabilities(self, chunk: LogChunk, space: ActionSpace) -> TargetProbabilities:
        position = space.position(self.action)
        assert position is not None
        index = np.full(len(chunk), position, dtype=np.int64)
        matrix = one_hot(index, len(space))
        return TargetProbabilities(matrix=matrix, chosen=chosen_of(matrix, chunk))


def _some(ids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(ids[:limit])
    return shown + (f", … ({len(ids)} in all)" if len(ids) > limit else "")


class ProbabilityFilePolicy(_Stateless):
    """Per-row action probabilities from a file (JSONL, CSV or Parquet): one column per action,
    row k giving the target's probabilities for log row k. Actions without a column get 0."""

    def __init__(self, path: str | Path, *, name: str | None = None,
                 chunk_rows: int = 50_000) -> None:
        self.path = Path(path)
        self.name = name or f"probs:{self.path.name}"
        self.chunk_rows = chunk_rows
        self._columns: tuple[str, ...] | None = None
        self._rows: Iterator[tuple[np.ndarray, FloatArray]] | None = None
        self._buffer: list[tuple[np.ndarray, FloatArray]] = []
        self._positions: np.ndarray | None = None

    def actions(self) -> Sequence[str]:
        if self._columns is None:
            try:
                first = next(iter(read_chunks(self.path, chunk_rows=1)), None)
            except HistoryFileError as exc:
                raise LogError(f"{self.name}: {exc}") from exc
            if first is None:
                raise LogError(f"{self.path}: the probability file has no rows")
            self._columns = tuple(str(c) for c in first.frame().columns)
        return self._columns

    def prepare(self, space: ActionSpace, summary: LogSummary, source: LogSource) -> None:
        positions = [space.position(c) for c in self.actions()]
        self._positions = np.asarray(positions, dtype=np.int64)

    def start(self) -> None:
        self._rows = self._read()
        self._buffer = []

    def _read(self) -> Iterator[tuple[np.ndarray, FloatArray]]:
        import pandas as pd

        try:
            for raw in read_chunks(self.path, chunk_rows=self.chunk_rows):
                frame = raw.frame()
                rows = np.asarray(raw.rows)
                if tuple(str(c) for c in frame.columns) != self.actions():
                    raise LogError(f"{raw.where(0)}: columns differ from the file's first row")
                values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
                yield rows, _checked(values, frame, rows, self.path)
        except HistoryFileError as exc:
            raise LogError(f"{self.name}: {exc}") from exc

    def _take(self, count: int) -> tuple[np.ndarray, FloatArray]:
        assert self._rows is not None, "start() before probabilities()"
        parts_rows: list[np.ndarray] = []
        parts: list[FloatArray] = []
        need = count
        while need > 0:
            if not self._buffer:
                nxt = next(self._rows, None)
                if nxt is None:
                    raise LogError(f"{self.path}: {self.name} has fewer rows than the log")
                self._buffer.append(nxt)
            rows, values = self._buffer.pop()
            parts_rows.append(rows[:need])
            parts.append(values[:need])
            if len(rows) > need:
                self._buffer.append((rows[need:], values[need:]))
            need -= min(need, len(rows))
        return np.concatenate(parts_rows), np.concatenate(parts)

    def finish(self) -> None:
        """Raise when the file has more rows than the log."""
        if self._rows is not None and (self._buffer or next(self._rows, None) is not None):
            raise LogError(f"{self.path}: {self.name} has more rows than the log")

    def probabilities(self, chunk: LogChunk, space: ActionSpace) -> TargetProbabilities:
        assert self._positions is not None
        _, values = self._take(len(chunk))
        matrix = np.zeros((len(chunk), len(space)), dtype=np.float64)
        matrix[:, self._positions] = values
        return TargetProbabilities(matrix=matrix, chosen=chosen_of(matrix, chunk))


def _checked(values: FloatArray, frame: object, rows: np.ndarray, path: Path) -> FloatArray:
    """Probability rows must be finite, non-negative numbers that sum to 1."""
    problems: list[str] = []
    bad_value = ~np.isfinite(values) | (values < 0)
    for i in np.flatnonzero(bad_value.any(axis=1))[:MAX_REPORTED_ROWS]:
        column = int(np.flatnonzero(bad_value[i])[0])
        cell = frame.iloc[i, column]  # type: ignore[attr-defined]
        cell = cell.item() if isinstance(cell, np.generic) else cell
        name = frame.columns[column]  # type: ignore[attr-defined]
        problems.append(f"row {rows[i]}: {name} = {cell!r} is not a probability")
    sums = np.where(bad_value, 0.0, values).sum(axis=1)
    off = np.flatnonzero(~bad_value.any(axis=1) & (np.abs(sums - 1.0) > SUM_TOLERANCE))
    for i in off[:MAX_REPORTED_ROWS]:
        problems.append(f"row {rows[i]}: probabilities sum to {sums[i]:.6g}, not 1")
    if problems:
        problems.sort(key=lambda text: int(text.split(":")[0].split()[1]))
        count = int(bad_value.any(axis=1).sum()) + len(off)
        raise LogError(f"{path}: bad probability rows ({count}): " + "; ".join(problems))
    return values
