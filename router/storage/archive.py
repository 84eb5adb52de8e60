"""Archive files of the event log: Parquet history files written durably, named in order.

Each archived decision becomes one row in the history-file format (README "History files",
:mod:`offline.history_file`), so ``router train --history`` and ``router replay`` read an archive
file (or the whole archive directory) as they read any history file. Layout of ``archive_dir``:

- ``decisions-<n>-<first>-<last>.parquet``: decisions with their outcomes, ``n`` counting up
  from 000001, ``first``/``last`` the decision-time range (UTC, ``%Y%m%dT%H%M%SZ``); the
  file's Parquet metadata holds the outcome sequence range (``router.first_seq``,
  ``router.last_seq``);
- ``unanswered/decisions-<n>-<first>-<last>.parquet``: decisions that never got an outcome, the
  same columns with the outcome columns empty (not a history file: no ``outcome``).

A file appears under its final name only complete and fsynced (written in ``.partial/``, then
renamed), so every named file's rows are safe to delete from the database.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from learners.context import CallerContext, Task

if TYPE_CHECKING:
    import pyarrow as pa

UNANSWERED = "unanswered"
PARTIAL = ".partial"
_NAME = re.compile(r"^decisions-(\d{6,})-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.parquet$")
_TIME = "%Y%m%dT%H%M%SZ"


class LoggedRequest(msgspec.Struct, frozen=True):
    """The parts of a logged route request that an archive row keeps (other keys ignored)."""

    task: Task
    context: CallerContext = CallerContext()


class ArchivedDecision(msgspec.Struct, frozen=True):
    """One archive row: the columns of :class:`offline.history_file.HistoryRow`."""

    timestamp: str
    task_type: str
    language: str
    description: str
    action: str
    framework: str | None
    requirements: list[str]
    project_id: str | None
    user_id: str | None
    agent: str | None
    rag_examples: int | None
    rag_avg_similarity: float | None
    rag_avg_quality: float | None
    objective: str
    tenant: str
    decision_id: str
    propensity: float
    outcome: str | None = None
    quality: float | None = None
    generation_time_s: float | None = None
    cost_usd: float | None = None
    tokens: int | None = None
    regenerations: int | None = None
    code: str | None = None
    complexity: float | None = None
    reward: float | None = None
    feedback_timestamp: str | None = None


def _schema() -> pa.Schema:
    import pyarrow as pa

    text, number, integer = pa.string(), pa.float64(), pa.int64()
    types = {"requirements": pa.list_(text), "rag_examples": integer, "tokens": integer,
             "regenerations": integer, "propensity": number}
    numbers = ("rag_avg_similarity", "rag_avg_quality", "quality", "generation_time_s",
               "cost_usd", "complexity", "reward")
    types.update(dict.fromkeys(numbers, number))
    return pa.schema([(name, types.get(name, text))
                      for name in ArchivedDecision.__struct_fields__])


def file_number(path: Path) -> int | None:
    match = _NAME.match(path.name)
    return None if match is None else int(match.group(1))


def archive_files(directory: Path) -> list[Path]:
    """The complete archive files in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    found = [(n, p) for p in directory.iterdir() if (n := file_number(p)) is not None]
    return [p for _, p in sorted(found)]


def write_archive(directory: Path, rows: Sequence[ArchivedDecision], first_at: datetime,
                  last_at: datetime, seq_range: tuple[int, int] | None) -> Path:
    """Write ``rows`` as the next numbered file of ``directory``, durably; returns its path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    existing = archive_files(directory)
    number = (file_number(existing[-1]) or 0) + 1 if existing else 1
    name = f"decisions-{number:06d}-{first_at:{_TIME}}-{last_at:{_TIME}}.parquet"
    partial = directory / PARTIAL
    partial.mkdir(parents=True, exist_ok=True)
    metadata = {"router.rows": str(len(rows))}
    if seq_range is not None:
        metadata |= {"router.first_seq": str(seq_range[0]), "router.last_seq": str(seq_range[1])}
    table = pa.Table.from_pylist(msgspec.to_builtins(list(rows)),
                                 schema=_schema().with_metadata(metadata))
    temporary = partial / name
    pq.write_table(table, temporary)
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    final = directory / name
    os.replace(temporary, final)
    _fsync_directory(directory)
    return final


def archived_ids(path: Path) -> list[str]:
    """The decision ids one archive file holds."""
    import pyarrow.parquet as pq

    column = pq.read_table(path, columns=["decision_id"]).column("decision_id")
    return [str(value) for value in column.to_pylist()]


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
