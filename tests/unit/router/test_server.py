"""``router serve``'s multi-process metrics directory (router/server.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from router.metrics import MULTIPROC_ENV
from router.server import multiprocess_metrics


def test_workers_get_a_private_metrics_directory_removed_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(MULTIPROC_ENV, raising=False)
    with multiprocess_metrics() as path:
        assert os.environ[MULTIPROC_ENV] == str(path)
        assert path.is_dir()
        (path / "counter_123.db").write_bytes(b"")
    assert MULTIPROC_ENV not in os.environ
    assert not path.exists()


def test_a_configured_metrics_directory_is_emptied_of_value_files_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "histogram_99.db").write_bytes(b"")
    (directory / "README").write_text("not ours")
    monkeypatch.setenv(MULTIPROC_ENV, str(directory))
    with multiprocess_metrics() as path:
        assert path == directory
        assert sorted(p.name for p in directory.iterdir()) == ["README"]
    assert directory.is_dir()
    assert os.environ[MULTIPROC_ENV] == str(directory)
