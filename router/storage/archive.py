"""Archive files of the event log: Parquet history files written durably, named in order.

Each archived decision becomes the history row ``router export`` writes for it
(:func:`router.storage.history_rows.history_row`: the request with its free-form features, the
tenant, the decision id, the chosen action with its propensity, the allowed actions with the
logged probability vector, and the outcome), so ``router import``, ``router train --history`` and
``router replay`` read an archive file (or the whole archive directory) as they read any history
file. Layout of ``archive_dir``:

- ``decisions-<n>-<first>-<last>.parquet``: decisions with their outcomes, ``n`` counting up
  from 000001, ``first``/``last`` the decision-time range (UTC, ``%Y%m%dT%H%M%SZ``); the
  file's Parquet metadata holds the outcome sequence range (``router.first_seq``,
  ``router.last_seq``);
- ``unanswered/decisions-<n>-<first>-<last>.parquet``: decisions that never got an outcome, the
  same columns with the outcome columns empty (not a history file: no ``outcome``).

Every file's Parquet metadata also holds its rows' event-log ids (``router.event_log_ids``, a
JSON list in row order): an imported decision's ``decision_id`` column is the id its file gave
it, not the key it has in the database. A file appears under its final name only complete and
fsynced (written in ``.partial/``, then renamed), so every named file's rows are safe to delete
from the database.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from router.storage.history_rows import HistoryRow, history_table

UNANSWERED = "unanswered"
PARTIAL = ".partial"
_NAME = re.compile(r"^decisions-(\d{6,})-\d{8}T\d{6}Z-\d{8}T\d{6}Z\.parquet$")
_TIME = "%Y%m%dT%H%M%SZ"
_IDS = "router.event_log_ids"


def file_number(path: Path) -> int | None:
    match = _NAME.match(path.name)
    return None if match is None else int(match.group(1))


def archive_files(directory: Path) -> list[Path]:
    """The complete archive files in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    found = [(n, p) for p in directory.iterdir() if (n := file_number(p)) is not None]
    return [p for _, p in sorted(found)]


def write_archive(directory: Path, rows: Sequence[HistoryRow], event_log_ids: Sequence[str],
                  first_at: datetime, last_at: datetime,
                  seq_range: tuple[int, int] | None) -> Path:
    """Write ``rows`` (whose event-log ids are ``event_log_ids``, in the same order) as the next
    numbered file of ``directory``, durably; returns its path."""
    import pyarrow.parquet as pq

    if len(event_log_ids) != len(rows):
        raise ValueError(f"{len(event_log_ids)} event-log ids for {len(rows)} rows")
    existing = archive_files(directory)
    number = (file_number(existing[-1]) or 0) + 1 if existing else 1
    name = f"decisions-{number:06d}-{first_at:{_TIME}}-{last_at:{_TIME}}.parquet"
    partial = directory / PARTIAL
    partial.mkdir(parents=True, exist_ok=True)
    metadata = {"router.rows": str(len(rows)), _IDS: json.dumps(list(event_log_ids))}
    if seq_range is not None:
        metadata |= {"router.first_seq": str(seq_range[0]), "router.last_seq": str(seq_range[1])}
    temporary = partial / name
    pq.write_table(history_table(rows, metadata), temporary)
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    final = directory / name
    os.replace(temporary, final)
    _fsync_directory(directory)
    return final


def archived_ids(path: Path) -> list[str]:
    """The event-log ids of the decisions one archive file holds."""
    import pyarrow.parquet as pq

    metadata = pq.read_schema(path).metadata or {}
    listed = metadata.get(_IDS.encode())
    if listed is not None:
        return [str(value) for value in json.loads(listed)]
    # A file without the list names every decision by its event-log id.
    column = pq.read_table(path, columns=["decision_id"]).column("decision_id")
    return [str(value) for value in column.to_pylist()]


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
