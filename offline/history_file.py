"""History files: past generation events for ``router import`` and ``router train --history``.

One row per decision with its outcome, as JSONL, CSV or Parquet (by file extension). The
schema follows DESIGN.md's offline log format plus outcome fields (README "History files"):

- required: ``timestamp`` (ISO 8601; UTC when no offset), ``task_type``, ``language``,
  ``description``, ``outcome`` (``approved``/``modified``/``rejected``), and the action, either
  as ``action`` (catalog id ``model|temperature|template``) or as ``model``, ``temperature``,
  ``template``;
- optional context: ``framework``, ``requirements`` (list; in CSV a JSON list or ``;``-separated),
  ``project_id``, ``user_id``, ``agent``, ``rag_examples``, ``rag_avg_similarity``,
  ``rag_avg_quality``, ``objective``, ``tenant``, ``decision_id``, ``propensity``;
- optional outcome: ``quality`` (0–10), ``generation_time_s``, ``cost_usd``, ``tokens``,
  ``regenerations``, ``code``, ``complexity`` (0–10 rating), ``reward`` (0–1),
  ``feedback_timestamp`` (when the outcome became known; default: ``timestamp`` plus
  ``generation_time_s``).

Large files are read in chunks; a bad row raises :class:`HistoryFileError` naming the file, the
row number and the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from learners.catalog import ACTION_SEPARATOR
from learners.context import MAX_DESCRIPTION_CHARS
from learners.reward import Verdict

CHUNK_ROWS = 50_000
FORMATS = (".jsonl", ".json", ".csv", ".parquet")


class HistoryFileError(ValueError):
    """A history file that cannot be read, with the row and field at fault."""


class HistoryRow(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    timestamp: datetime
    task_type: Annotated[str, Meta(min_length=1, max_length=128)]
    language: Annotated[str, Meta(min_length=1, max_length=128)]
    description: Annotated[str, Meta(min_length=1, max_length=MAX_DESCRIPTION_CHARS)]
    outcome: Verdict
    action: str | None = None
    model: str | None = None
    temperature: Annotated[float, Meta(ge=0.0, le=2.0)] | None = None
    template: str | None = None
    framework: str | None = None
    requirements: list[str] = []
    project_id: str | None = None
    user_id: str | None = None
    agent: str | None = None
    rag_examples: Annotated[int, Meta(ge=0)] | None = None
    rag_avg_similarity: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    rag_avg_quality: Annotated[float, Meta(ge=0.0, le=10.0)] | None = None
    objective: str = "balanced"
    tenant: str = "default"
    decision_id: str | None = None
    propensity: Annotated[float, Meta(gt=0.0, le=1.0)] | None = None
    quality: Annotated[float, Meta(ge=0.0, le=10.0)] | None = None
    generation_time_s: Annotated[float, Meta(ge=0.0)] | None = None
    cost_usd: Annotated[float, Meta(ge=0.0)] | None = None
    tokens: Annotated[int, Meta(ge=0)] | None = None
    regenerations: Annotated[int, Meta(ge=0)] = 0
    code: str | None = None
    complexity: Annotated[float, Meta(ge=0.0, le=10.0)] | None = None
    reward: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    feedback_timestamp: datetime | None = None

    def decided_at(self) -> datetime:
        return _utc(self.timestamp)

    def known_at(self) -> datetime:
        """When the outcome became known (never before the decision)."""
        if self.feedback_timestamp is not None:
            return max(_utc(self.feedback_timestamp), self.decided_at())
        return self.decided_at() + timedelta(seconds=self.generation_time_s or 0.0)

    def action_parts(self) -> tuple[str, float, str]:
        """(model, temperature, template) from ``action`` or the three separate fields."""
        if self.action is not None:
            parts = self.action.split(ACTION_SEPARATOR)
            if len(parts) != 3:
                raise ValueError("action: expected 'model|temperature|template'")
            try:
                return parts[0], float(parts[1]), parts[2]
            except ValueError as exc:
                raise ValueError(f"action: temperature {parts[1]!r} is not a number") from exc
        if self.model is None or self.temperature is None or self.template is None:
            raise ValueError("action: give 'action' or all of 'model', 'temperature', 'template'")
        return self.model, self.temperature, self.template


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _row(raw: dict[str, Any], where: str) -> HistoryRow:
    try:
        row = msgspec.convert(raw, HistoryRow, strict=False)
        row.action_parts()
    except (msgspec.ValidationError, ValueError) as exc:
        raise HistoryFileError(f"{where}: {exc}") from exc
    return row


def _clean_tabular(record: dict[str, Any]) -> dict[str, Any]:
    """CSV/Parquet cells: drop missing values, decode list columns."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
            continue
        if key == "requirements" and isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [
                part.strip() for part in text.split(";") if part.strip()]
        elif key == "requirements" and not isinstance(value, list):
            value = list(value)
        out[key] = value
    return out


def read_history(path: str | Path) -> Iterator[list[HistoryRow]]:
    """Rows of ``path`` in chunks of at most ``CHUNK_ROWS`` (file order)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise HistoryFileError(f"{path}: unknown format {suffix!r}; use one of {FORMATS}")
    if not path.exists():
        raise HistoryFileError(f"{path}: no such file")
    if suffix in (".jsonl", ".json"):
        yield from _read_jsonl(path)
    elif suffix == ".csv":
        yield from _read_csv(path)
    else:
        yield from _read_parquet(path)


def _read_jsonl(path: Path) -> Iterator[list[HistoryRow]]:
    chunk: list[HistoryRow] = []
    decoder = msgspec.json.Decoder(dict[str, Any])
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path} row {number}"
            try:
                raw = decoder.decode(line)
            except msgspec.DecodeError as exc:
                raise HistoryFileError(f"{where}: not a JSON object: {exc}") from exc
            chunk.append(_row(raw, where))
            if len(chunk) >= CHUNK_ROWS:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _read_csv(path: Path) -> Iterator[list[HistoryRow]]:
    import pandas as pd

    start = 2  # row 1 is the header
    for frame in pd.read_csv(path, chunksize=CHUNK_ROWS, dtype={"requirements": "string"}):
        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        yield [_row(_clean_tabular(r), f"{path} row {start + i}") for i, r in enumerate(records)]
        start += len(records)


def _read_parquet(path: Path) -> Iterator[list[HistoryRow]]:
    import pyarrow.parquet as pq

    start = 1
    for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS):
        records = batch.to_pylist()
        yield [_row(_clean_tabular(r), f"{path} row {start + i}") for i, r in enumerate(records)]
        start += len(records)


def write_history(path: str | Path, rows: list[HistoryRow]) -> None:
    """Write ``rows`` as JSONL, CSV or Parquet (by extension)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        encoder = msgspec.json.Encoder()
        with path.open("wb") as handle:
            for row in rows:
                handle.write(encoder.encode(row) + b"\n")
        return
    import pandas as pd

    frame = pd.DataFrame([msgspec.to_builtins(r) for r in rows])
    if suffix == ".csv":
        if "requirements" in frame:
            frame["requirements"] = frame["requirements"].map(
                lambda v: json.dumps(v) if isinstance(v, list) else v)
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        raise HistoryFileError(f"{path}: unknown format {suffix!r}; use one of {FORMATS}")
