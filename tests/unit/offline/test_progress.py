"""Progress bars: drawn on a terminal only, never on standard output."""

from __future__ import annotations

import io
import json
from pathlib import Path

import msgspec
import pytest
from rich.console import Console

from offline.history_file import write_history
from offline.progress import progress_bar
from offline.synthetic import generate_history
from offline.world import World
from router.cli import main
from tests.support import make_settings


def _console(*, terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=100), out


def test_a_bar_is_drawn_on_a_terminal() -> None:
    console, out = _console(terminal=True)
    with progress_bar("router import: decisions", 10, console=console) as bar:
        bar.advance(3)
    assert "router import: decisions" in out.getvalue()
    assert "3/10" in out.getvalue()


def test_no_bar_without_a_terminal_but_logged_lines_stay() -> None:
    console, out = _console(terminal=False)
    with progress_bar("router import", 10, console=console) as bar:
        bar.advance(3)
        bar.log("bench: round 1/2: 810 req/s, " + "p50 2.1 ms " * 20)
    # One line however long (a console that is no terminal is 80 columns wide).
    assert out.getvalue() == "bench: round 1/2: 810 req/s, " + "p50 2.1 ms " * 20 + "\n"


def test_stages_start_over() -> None:
    console, out = _console(terminal=True)
    with progress_bar("router replay", console=console) as bar:
        bar.report("validating", 500, None)
        bar.report("estimating", 200, 800)
    text = out.getvalue()
    assert "router replay: validating" in text
    assert "router replay: estimating" in text
    assert "200/800" in text


def test_replay_writes_no_progress_when_stderr_is_no_terminal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = make_settings("sqlite+aiosqlite:///unused.db").catalog
    log = tmp_path / "log.jsonl"
    rows = generate_history(World(catalog=catalog, seed=1), 200, seed=1)
    write_history(log, [msgspec.structs.replace(row, reward=0.5, propensity=0.25)
                        for row in rows])
    out = tmp_path / "report.json"
    assert main(["replay", str(log), "--bootstrap", "0", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith(f"log: {log}   rows: 200")
    assert json.loads(out.read_text())["n"] == 200  # the JSON report is whole
