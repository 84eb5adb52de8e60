"""Archive files name their rows by event-log id, whatever ``decision_id`` a row carries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from offline.history_file import read_history, write_history
from offline.synthetic import generate_history
from offline.world import World
from router.storage.archive import archive_files, archived_ids, write_archive
from tests.support import make_settings


def test_an_archive_file_lists_its_event_log_ids_and_reads_as_a_history_file(
        tmp_path: Path) -> None:
    catalog = make_settings("sqlite+aiosqlite:///unused.db").catalog
    rows = generate_history(World(catalog=catalog, seed=2), 5, seed=2)
    keys = [f"key-{i}" for i in range(5)]  # imported decisions: keys other than their ids
    at = datetime(2026, 1, 5, tzinfo=UTC)

    path = write_archive(tmp_path, rows, keys, at, at, (3, 7))

    assert archive_files(tmp_path) == [path]
    assert archived_ids(path) == keys
    assert [row for chunk in read_history(path) for row in chunk] == rows
    # A file without the list names its rows by their decision ids.
    plain = tmp_path / "plain" / path.name
    plain.parent.mkdir()
    write_history(plain, rows)
    assert archived_ids(plain) == [row.decision_id for row in rows]
