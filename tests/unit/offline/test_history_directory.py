"""A directory of history files (a retention archive) reads as one history, in name order."""

from __future__ import annotations

from pathlib import Path

import pytest

from offline.history_file import HistoryFileError, read_history, write_history
from offline.synthetic import generate_history
from offline.world import World
from tests.support import make_settings


def test_a_directory_reads_its_files_in_name_order(tmp_path: Path) -> None:
    catalog = make_settings("sqlite+aiosqlite:///unused.db").catalog
    rows = generate_history(World(catalog=catalog, seed=1), 30, seed=1)
    write_history(tmp_path / "decisions-000002.parquet", rows[20:])
    write_history(tmp_path / "decisions-000001.parquet", rows[:20])
    (tmp_path / ".lock").write_text("")
    (tmp_path / "unanswered").mkdir()
    read = [row for chunk in read_history(tmp_path) for row in chunk]
    assert read == rows


def test_a_directory_without_history_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(HistoryFileError, match="without history files"):
        list(read_history(tmp_path))

