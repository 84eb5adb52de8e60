"""History files: past generation events for ``router import`` and ``router train --history``.

One row per decision with its outcome, as JSONL, CSV or Parquet (by file extension); a
directory stands for every such file directly in it, in name order (a retention archive). The
schema follows DESIGN.md's offline log format plus outcome fields (docs/learning.md):

- required: ``timestamp`` (ISO 8601; UTC when no offset), ``task_type``, ``language``,
  ``description``, ``outcome`` (``approved``/``modified``/``rejected``), and the action, either
  as ``action`` (catalog id ``model|temperature|template``) or as ``model``, ``temperature``,
  ``template``;
- optional context: ``framework``, ``requirements`` (list; in CSV a JSON list or ``;``-separated),
  ``project_id``, ``user_id``, ``agent``, ``rag_examples``, ``rag_avg_similarity``,
  ``rag_avg_quality``, ``features`` (the route request's free-form features, an object; in
  CSV and Parquet its JSON text), ``objective``, ``tenant``, ``decision_id``, ``propensity``;
- optional logging policy: ``allowed`` (the action ids the decision could choose from) and
  ``probabilities`` (the logged probability of each, in the same order; in CSV JSON lists), so
  that replay knows the logging policy's whole vector (``router export`` writes both);
- optional outcome: ``quality`` (0–10), ``generation_time_s``, ``cost_usd``, ``tokens``,
  ``regenerations``, ``code``, ``complexity`` (0–10 rating), ``reward`` (0–1),
  ``feedback_timestamp`` (when the outcome became known; default: ``timestamp`` plus
  ``generation_time_s``).

Each row is a :class:`router.public.HistoryRow`, the row ``router export`` and retention's
archive files write for a decision. Large files are read in chunks; a bad row raises
:class:`HistoryFileError` naming the file, the row number and the field.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

import msgspec

from learners.catalog import format_action_id
from router.public import TEXT_COLUMNS, history_table, parquet_schema, row_cells
from router.public import HistoryRow as HistoryRow  # the rows of a history file

if TYPE_CHECKING:
    import pandas as pd

CHUNK_ROWS = 50_000
FORMATS = (".jsonl", ".json", ".csv", ".parquet")
# Columns whose CSV (and, for ``features``, Parquet) cells hold JSON text.
_JSON_COLUMNS = ("allowed", "probabilities", "features")
_JSON = msgspec.json.Encoder()


class HistoryFileError(ValueError):
    """A history file that cannot be read, with the row and field at fault."""


def parse_row(raw: dict[str, Any], where: str) -> HistoryRow:
    """One record as a :class:`HistoryRow`; :class:`HistoryFileError` names ``where``."""
    try:
        row = msgspec.convert(raw, HistoryRow, strict=False)
        if row.outcome is None:
            raise ValueError("outcome: required (approved, modified or rejected)")
        row.check_logged_vector(format_action_id(*row.action_parts()))
    except (msgspec.ValidationError, ValueError) as exc:
        raise HistoryFileError(f"{where}: {exc}") from exc
    return row


def _clean_tabular(record: dict[str, Any]) -> dict[str, Any]:
    """CSV/Parquet cells: drop missing values, decode list columns."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if value is None or (isinstance(value, float) and math.isnan(value)) or (
                isinstance(value, str) and value == ""):
            continue
        if hasattr(value, "tolist"):  # NumPy arrays and scalars from Parquet list columns
            value = value.tolist()
        if key in _JSON_COLUMNS and isinstance(value, str):
            # Left as text when it is no JSON: the row's check then names the field.
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        elif key == "requirements" and isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [
                part.strip() for part in text.split(";") if part.strip()]
        elif key == "requirements" and not isinstance(value, list):
            value = list(value)
        out[key] = value
    return out


class RawChunk:
    """Up to ``CHUNK_ROWS`` undecoded rows of a log or history file and their row numbers.

    JSONL chunks hold the decoded JSON objects (``records``); CSV and Parquet chunks hold a
    pandas frame (``frame``). Either view is built from the other on demand, so readers take
    the one that suits them: :func:`read_history` validates records one by one, replay
    (:mod:`offline.replay.log`) validates whole columns at once.
    """

    def __init__(self, *, path: Path, rows: list[int], records: list[dict[str, Any]] | None = None,
                 frame: pd.DataFrame | None = None) -> None:
        if (records is None) == (frame is None):
            raise ValueError("a chunk holds either records or a frame")
        self.path = path
        self.rows = rows
        self._records = records
        self._frame = frame

    @property
    def tabular(self) -> bool:
        """True for CSV/Parquet cells (empty strings and NaN mean missing)."""
        return self._frame is not None

    def __len__(self) -> int:
        return len(self.rows)

    def where(self, position: int) -> str:
        """``"<file> row <n>"`` for the chunk's ``position``-th row."""
        return f"{self.path} row {self.rows[position]}"

    def records(self) -> list[dict[str, Any]]:
        if self._records is None:
            assert self._frame is not None
            frame = self._frame
            raw = frame.astype(object).where(frame.notna(), None).to_dict("records")
            self._records = [_clean_tabular(r) for r in raw]
        return self._records

    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            import pandas as pd

            self._frame = pd.DataFrame.from_records(self._records)
        return self._frame


def read_chunks(path: str | Path, *, chunk_rows: int = CHUNK_ROWS,
                columns: list[str] | None = None) -> Iterator[RawChunk]:
    """Undecoded rows of ``path`` in file order, at most ``chunk_rows`` at a time.

    ``columns`` restricts CSV and Parquet reads to those columns (the ones the file has), so a
    reader that needs three columns of a wide file does not parse the rest.
    """
    path = Path(path)
    if path.is_dir():
        yield from _directory_chunks(path, chunk_rows, columns)
        return
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise HistoryFileError(f"{path}: unknown format {suffix!r}; use one of {FORMATS}")
    if not path.exists():
        raise HistoryFileError(f"{path}: no such file")
    if suffix in (".jsonl", ".json"):
        yield from _jsonl_chunks(path, chunk_rows)
    elif suffix == ".csv":
        yield from _csv_chunks(path, chunk_rows, columns)
    else:
        yield from _parquet_chunks(path, chunk_rows, columns)


def _directory_chunks(path: Path, chunk_rows: int,
                      columns: list[str] | None) -> Iterator[RawChunk]:
    """Every history file directly in ``path``, in name order (a retention archive's files are
    numbered in the order they were written; docs/operations.md "Retention")."""
    files = sorted(p for p in path.iterdir()
                   if p.is_file() and p.suffix.lower() in FORMATS and not p.name.startswith("."))
    if not files:
        raise HistoryFileError(f"{path}: a directory without history files ({FORMATS})")
    for file in files:
        yield from read_chunks(file, chunk_rows=chunk_rows, columns=columns)


def _jsonl_chunks(path: Path, chunk_rows: int) -> Iterator[RawChunk]:
    rows: list[int] = []
    records: list[dict[str, Any]] = []
    decoder = msgspec.json.Decoder(dict[str, Any])
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(decoder.decode(line))
            except msgspec.DecodeError as exc:
                raise HistoryFileError(f"{path} row {number}: not a JSON object: {exc}") from exc
            rows.append(number)
            if len(records) >= chunk_rows:
                yield RawChunk(path=path, rows=rows, records=records)
                rows, records = [], []
    if records:
        yield RawChunk(path=path, rows=rows, records=records)


def _csv_chunks(path: Path, chunk_rows: int, columns: list[str] | None) -> Iterator[RawChunk]:
    import pandas as pd

    start = 2  # row 1 is the header
    usecols = None if columns is None else (lambda name: name in columns)
    try:
        # Text columns stay text (an id or a description may look like a number).
        reader = pd.read_csv(path, chunksize=chunk_rows,
                             dtype=dict.fromkeys(TEXT_COLUMNS, "string"), usecols=usecols)
        for frame in reader:
            yield RawChunk(path=path, rows=list(range(start, start + len(frame))), frame=frame)
            start += len(frame)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise HistoryFileError(f"{path}: not a readable CSV file after row {start - 1}: "
                               f"{exc}") from exc


def _parquet_chunks(path: Path, chunk_rows: int,
                    columns: list[str] | None) -> Iterator[RawChunk]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise HistoryFileError(f"{path}: not a readable Parquet file: {exc}") from exc
    present = None if columns is None else [c for c in columns if c in source.schema_arrow.names]
    start = 1
    for batch in source.iter_batches(batch_size=chunk_rows, columns=present):
        frame = batch.to_pandas()
        yield RawChunk(path=path, rows=list(range(start, start + len(frame))), frame=frame)
        start += len(frame)


def read_history(path: str | Path) -> Iterator[list[HistoryRow]]:
    """Rows of ``path`` in chunks of at most ``CHUNK_ROWS`` (file order)."""
    for chunk in read_chunks(path):
        records = chunk.records()
        yield [parse_row(record, chunk.where(i)) for i, record in enumerate(records)]


def write_history(path: str | Path, rows: Iterable[HistoryRow]) -> None:
    """Write ``rows`` as JSONL, CSV or Parquet (by extension)."""
    with HistoryWriter(path) as writer:
        writer.write(rows)


class HistoryWriter:
    """Writes history rows to one JSONL, CSV or Parquet file (by extension), a batch at a time,
    so that a long log is written without holding it in memory. CSV and Parquet files have
    every :class:`HistoryRow` column, empty where a row has no value."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.suffix = self.path.suffix.lower()
        if self.suffix not in FORMATS:
            raise HistoryFileError(f"{path}: unknown format {self.suffix!r}; use one of {FORMATS}")
        self._handle: BinaryIO | None = None
        self._text: TextIO | None = None
        self._parquet: Any = None
        self._csv: Any = None

    def __enter__(self) -> HistoryWriter:
        if self.suffix == ".parquet":
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(self.path, parquet_schema())
        elif self.suffix == ".csv":
            self._text = self.path.open("w", encoding="utf-8", newline="")
            self._csv = csv.writer(self._text)
            self._csv.writerow(HistoryRow.__struct_fields__)
        else:
            self._handle = self.path.open("wb")
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in (self._parquet, self._text, self._handle):
            if handle is not None:
                handle.close()

    def write(self, rows: Iterable[HistoryRow]) -> None:
        rows = list(rows)
        if self.suffix in (".jsonl", ".json"):
            assert self._handle is not None
            self._handle.write(b"".join(_JSON.encode(row) + b"\n" for row in rows))
        elif self.suffix == ".csv":
            self._csv.writerows(row_cells(row, csv_cells=True) for row in rows)
        elif rows:
            self._parquet.write_table(history_table(rows))
