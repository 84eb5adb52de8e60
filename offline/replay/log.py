"""Logged decisions as columnar NumPy chunks, validated with row-numbered errors.

A log is one row per decision (DESIGN.md, "Offline log format"): ``action`` (or ``model`` +
``temperature`` + ``template``), ``reward``, ``propensity`` in (0, 1], optional ``decision_id``
and ``timestamp``, and any context columns. Files are read in chunks by
:func:`offline.history_file.read_chunks`; the event log by :mod:`offline.replay.event_log`.

Evaluation makes two passes over a :class:`LogSource`: the first (:func:`scan_log`) validates
every row, collects the actions and fits the reward model; the second computes the estimates.
Nothing holds more than one chunk of rows at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from learners.catalog import Catalog, format_action_id
from offline.history_file import CHUNK_ROWS, HistoryFileError, read_chunks
from offline.replay.errors import ReplayError

if TYPE_CHECKING:
    import pandas as pd

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

LOG_COLUMNS = ("action", "model", "temperature", "template", "reward", "propensity",
               "timestamp", "decision_id")
MAX_REPORTED_ROWS = 10


class LogError(ReplayError):
    """Rows of a log that cannot be evaluated, each named with its row number and reason."""


@dataclass(frozen=True, eq=False)
class LogChunk:
    """Up to one chunk of logged decisions as columns.

    ``actions`` are the logged action ids; ``action`` their index into the evaluation's
    :class:`ActionSpace` (``-1`` before :meth:`ActionSpace.index` has run). ``logged`` and
    ``allowed`` are (rows × actions) matrices when the log knows the logging policy's whole
    probability vector and the allowed actions (the event log does; files do not).
    ``logged_known`` marks the rows of ``logged`` that hold a vector (None: all of them): a
    ``router import``ed decision knows only its chosen action's propensity, so its row of
    ``logged`` is zeros and estimators use the propensity alone there.
    """

    rows: IntArray
    actions: npt.NDArray[np.object_]
    propensity: FloatArray
    reward: FloatArray
    timestamp: FloatArray
    action: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    logged: FloatArray | None = None
    allowed: BoolArray | None = None
    contexts: Sequence[Any] | None = None
    logged_known: BoolArray | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def with_space(self, space: ActionSpace) -> LogChunk:
        """This chunk with ``action`` indexing ``space`` (every logged action must be in it)."""
        index = space.index(self.actions)
        unknown = np.flatnonzero(index < 0)
        if unknown.size:
            raise LogError(_rows_message(
                "actions outside the action space",
                [(int(self.rows[i]), f"unknown action {self.actions[i]!r}") for i in unknown]))
        return LogChunk(rows=self.rows, actions=self.actions, propensity=self.propensity,
                        reward=self.reward, timestamp=self.timestamp, action=index,
                        logged=self.logged, allowed=self.allowed, contexts=self.contexts,
                        logged_known=self.logged_known)

    def known_vectors(self) -> BoolArray:
        """Which rows know the logger's whole probability vector."""
        if self.logged is None:
            return np.zeros(len(self), dtype=bool)
        if self.logged_known is None:
            return np.ones(len(self), dtype=bool)
        return self.logged_known


class ActionSpace:
    """The actions an evaluation knows, in a fixed order (columns of every probability matrix)."""

    def __init__(self, ids: Sequence[str]) -> None:
        if len(set(ids)) != len(ids):
            raise ReplayError("the action space names an action twice")
        self.ids: tuple[str, ...] = tuple(ids)
        self._positions = {a: i for i, a in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, action: str) -> int | None:
        return self._positions.get(action)

    def index(self, actions: npt.NDArray[np.object_]) -> IntArray:
        """Position of each action id (``-1`` for ids outside the space)."""
        import pandas as pd

        codes = pd.Index(self.ids).get_indexer(pd.Index(actions))
        return np.asarray(codes, dtype=np.int64)


class LogSource(Protocol):
    """Something that can hand out its decisions in chunks, the same ones on every call."""

    @property
    def name(self) -> str: ...

    def chunks(self) -> Iterator[LogChunk]: ...


class FileLog:
    """A log file in DESIGN.md's format (JSONL, CSV or Parquet), read ``chunk_rows`` at a time.

    With a ``catalog``, each chunk also carries every row's request
    (:class:`offline.replay.context.RowContext`) for policies that decide from it; the file must
    then be a history file (docs/learning.md) in decision-time order. Without one only
    the log columns are read.
    """

    def __init__(self, path: str | Path, *, chunk_rows: int = CHUNK_ROWS,
                 catalog: Catalog | None = None) -> None:
        self.path = Path(path)
        self.chunk_rows = chunk_rows
        self.catalog = catalog

    @property
    def name(self) -> str:
        return str(self.path)

    def chunks(self) -> Iterator[LogChunk]:
        from offline.replay.context import file_contexts, new_fold

        columns = None if self.catalog is not None else list(LOG_COLUMNS)
        fold = None if self.catalog is None else new_fold(self.catalog)
        try:
            for raw in read_chunks(self.path, chunk_rows=self.chunk_rows, columns=columns):
                chunk = chunk_from_frame(raw.frame(), np.asarray(raw.rows, dtype=np.int64),
                                         str(self.path))
                if fold is not None and self.catalog is not None:
                    chunk = replace(chunk, contexts=file_contexts(raw, fold, self.catalog))
                yield chunk
        except HistoryFileError as exc:
            raise LogError(str(exc)) from exc


def chunk_from_frame(frame: pd.DataFrame, rows: IntArray, where: str) -> LogChunk:
    """Validate the log columns of ``frame`` (rows numbered ``rows``) and keep them as arrays.

    Raises :class:`LogError` naming up to ``MAX_REPORTED_ROWS`` bad rows and why each is bad:
    a missing, non-numeric, non-finite, zero or above-one propensity, a missing or non-numeric
    reward, a missing action.
    """
    problems: list[tuple[int, str]] = []
    actions = _actions(frame, rows, where, problems)
    propensity = _numbers(frame, "propensity", rows, where, problems)
    bad = np.flatnonzero(~np.isnan(propensity) & ((propensity <= 0.0) | (propensity > 1.0)))
    problems += [(int(rows[i]), f"propensity {float(propensity[i])!r} is not in (0, 1]")
                 for i in bad]
    reward = _numbers(frame, "reward", rows, where, problems)
    if problems:
        problems.sort()
        raise LogError(_rows_message(f"{where}: rows that cannot be evaluated", problems))
    return LogChunk(rows=rows, actions=actions, propensity=propensity, reward=reward,
                    timestamp=_timestamps(frame, rows, where))


def _rows_message(title: str, problems: list[tuple[int, str]]) -> str:
    shown = "; ".join(f"row {row}: {reason}" for row, reason in problems[:MAX_REPORTED_ROWS])
    more = len(problems) - MAX_REPORTED_ROWS
    tail = f"; and {more} more" if more > 0 else ""
    return f"{title} ({len(problems)}): {shown}{tail}"


def _plain(value: Any) -> Any:
    """NumPy scalars as Python values, so messages read ``0.5`` not ``np.float64(0.5)``."""
    return value.item() if isinstance(value, np.generic) else value


def _missing(values: pd.Series) -> BoolArray:
    mask: BoolArray = np.array(values.isna().to_numpy(), dtype=bool)
    if not _numeric(values):
        mask |= values.map(lambda v: isinstance(v, str) and not v.strip()).to_numpy(dtype=bool)
    return mask


def _numeric(values: pd.Series) -> bool:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return bool(is_numeric_dtype(values.dtype) and not is_bool_dtype(values.dtype))


def _numbers(frame: pd.DataFrame, column: str, rows: IntArray, where: str,
             problems: list[tuple[int, str]]) -> FloatArray:
    """``column`` as float64; missing and non-numeric cells are reported and become NaN."""
    import pandas as pd

    if column not in frame.columns:
        raise LogError(f"{where}: no {column!r} column (DESIGN.md, offline log format)")
    values = frame[column]
    missing = _missing(values)
    if _numeric(values):
        is_bool = np.zeros(len(values), dtype=bool)
        numbers = np.array(values.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    else:
        cells = values.astype(object)
        is_bool = cells.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
        numbers = np.array(pd.to_numeric(cells.where(~is_bool), errors="coerce")
                           .to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    for i in np.flatnonzero(missing):
        problems.append((int(rows[i]), f"{column} is missing"))
    for i in np.flatnonzero(~missing & ~np.isfinite(numbers)):
        value = _plain(values.iloc[i])
        kind = "a boolean" if is_bool[i] else (
            "not finite" if isinstance(value, float | int) else "not a number")
        problems.append((int(rows[i]), f"{column} {value!r} is {kind}"))
    numbers[~np.isfinite(numbers)] = np.nan
    return numbers


def _actions(frame: pd.DataFrame, rows: IntArray, where: str,
             problems: list[tuple[int, str]]) -> npt.NDArray[np.object_]:
    if "action" in frame.columns:
        values = frame["action"]
        missing = _missing(values)
        for i in np.flatnonzero(missing):
            problems.append((int(rows[i]), "action is missing"))
        return np.asarray(values.astype(str).to_numpy(), dtype=object)
    parts = ("model", "temperature", "template")
    if not all(p in frame.columns for p in parts):
        raise LogError(f"{where}: no 'action' column (nor 'model', 'temperature', 'template')")
    out = np.empty(len(frame), dtype=object)
    for k, (model, temperature, template) in enumerate(
            zip(frame["model"], frame["temperature"], frame["template"], strict=True)):
        try:
            out[k] = format_action_id(str(model), float(temperature), str(template))
        except (TypeError, ValueError):
            problems.append((int(rows[k]), f"temperature {temperature!r} is not a number"))
            out[k] = ""
    return out


def _timestamps(frame: pd.DataFrame, rows: IntArray, where: str) -> FloatArray:
    """Decision times as UTC epoch seconds (NaN when the log has none)."""
    import pandas as pd

    if "timestamp" not in frame.columns:
        return np.full(len(frame), np.nan)
    try:
        parsed = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise LogError(f"{where} rows {rows[0]}-{rows[-1]}: timestamp: {exc}") from exc
    seconds: FloatArray = parsed.astype("int64").to_numpy(dtype=np.float64) / 1e9
    seconds[parsed.isna().to_numpy()] = np.nan
    return seconds


@dataclass(frozen=True)
class LogSummary:
    """What the first pass learns: size, the logged actions and their reward statistics."""

    n: int
    action_ids: tuple[str, ...]
    counts: dict[str, int]
    reward_sums: dict[str, float]
    reward_total: float
    min_propensity: float
    min_reward: float
    max_reward: float
    first_time: float
    last_time: float


def scan_log(source: LogSource, progress: Any = None) -> LogSummary:
    """Read ``source`` once: validates every row (raising :class:`LogError` on the first bad
    chunk) and collects per-action counts and reward sums."""
    import pandas as pd

    counts: dict[str, int] = {}
    sums: dict[str, float] = {}
    n = 0
    total = 0.0
    min_p = 1.0
    low, high = math.inf, -math.inf
    first, last = math.inf, -math.inf
    for chunk in source.chunks():
        if len(chunk) == 0:
            continue
        grouped = pd.DataFrame({"a": chunk.actions, "r": chunk.reward}).groupby("a")["r"].agg(
            ["count", "sum"])
        for action, count, total_r in zip(grouped.index, grouped["count"], grouped["sum"],
                                          strict=True):
            counts[str(action)] = counts.get(str(action), 0) + int(count)
            sums[str(action)] = sums.get(str(action), 0.0) + float(total_r)
        n += len(chunk)
        total += float(chunk.reward.sum())
        min_p = min(min_p, float(chunk.propensity.min()))
        low = min(low, float(chunk.reward.min()))
        high = max(high, float(chunk.reward.max()))
        if not np.all(np.isnan(chunk.timestamp)):
            first = min(first, float(np.nanmin(chunk.timestamp)))
            last = max(last, float(np.nanmax(chunk.timestamp)))
        if progress is not None:
            progress(len(chunk))
    if n == 0:
        raise LogError(f"{source.name}: the log has no rows")
    return LogSummary(n=n, action_ids=tuple(sorted(counts)), counts=counts, reward_sums=sums,
                      reward_total=total, min_propensity=min_p, min_reward=low,
                      max_reward=high, first_time=first,
                      last_time=last)
