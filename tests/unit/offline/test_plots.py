"""A command asked for a plot without matplotlib (the ``plots`` extra) says so before it runs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from offline.plots import PLOTS_INSTALL
from router.cli import main


@pytest.mark.parametrize("argv", [
    ["simulate", "--n", "20", "--plot", "curve.png"],
    ["replay", "missing.parquet", "--policy", "uniform", "--html", "report.html"],
    ["bench-suite", "--envs", "cls-iris", "--seeds", "1", "--steps-scale", "0.1", "--jobs", "1",
     "--plot", "suite.png"],
    ["bench-real", "--plot", "costs.png"],
    ["bench-real", "--out", "results"],
], ids=lambda argv: f"{argv[0]} {argv[-2]}")
def test_a_plot_without_matplotlib_is_refused_first(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not installed
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert PLOTS_INSTALL in captured.err
    assert captured.out == ""
    assert list(tmp_path.iterdir()) == []
