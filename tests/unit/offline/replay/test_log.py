"""Bad logs and probability files stop the evaluation with the rows at fault and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pandas as pd
import pytest

from learners.catalog import Catalog
from learners.reward import Verdict
from offline.history_file import HistoryRow, write_history
from offline.replay.evaluate import evaluate
from offline.replay.log import FileLog, LogError, scan_log
from offline.replay.policies import ProbabilityFilePolicy, UniformPolicy

GOOD = {"action": "A", "propensity": 0.5, "reward": 1.0}


def test_jsonl_bad_rows_are_named_with_their_reasons(tmp_path: Path) -> None:
    rows = [GOOD, {**GOOD, "propensity": None}, {**GOOD, "propensity": 0},
            {**GOOD, "propensity": 1.5}, {**GOOD, "propensity": "high"},
            {"action": "B", "reward": 1.0}, {**GOOD, "reward": "x"}, {**GOOD, "action": ""},
            {**GOOD, "propensity": True}]
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(LogError) as caught:
        scan_log(FileLog(path))
    message = str(caught.value)
    assert "(8)" in message
    for expected in ("row 2: propensity is missing", "row 3: propensity 0.0 is not in (0, 1]",
                     "row 4: propensity 1.5 is not in (0, 1]",
                     "row 5: propensity 'high' is not a number", "row 6: propensity is missing",
                     "row 7: reward 'x' is not a number", "row 8: action is missing",
                     "row 9: propensity True is a boolean"):
        assert expected in message
    assert "row 1:" not in message


def test_csv_rows_are_numbered_as_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("action,propensity,reward\nA,0.5,1\nB,,0\nA,0.2,nan\nA,abc,1\n")
    with pytest.raises(LogError) as caught:
        scan_log(FileLog(path, chunk_rows=2))
    message = str(caught.value)
    assert "row 3: propensity is missing" in message


def test_csv_non_numeric_and_nan_cells(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("action,propensity,reward\nA,0.5,1\nA,abc,1\nA,0.5,\n")
    with pytest.raises(LogError) as caught:
        scan_log(FileLog(path))
    message = str(caught.value)
    assert "row 3: propensity 'abc' is not a number" in message
    assert "row 4: reward is missing" in message


def test_parquet_and_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    pd.DataFrame({"action": ["A", "B"], "reward": [1.0, 0.0],
                  "propensity": [0.5, float("inf")]}).to_parquet(path)
    with pytest.raises(LogError, match="row 2: propensity inf is not finite"):
        scan_log(FileLog(path))
    pd.DataFrame({"action": ["A"], "reward": [1.0]}).to_parquet(path)
    with pytest.raises(LogError, match="no 'propensity' column"):
        scan_log(FileLog(path))


def test_model_temperature_template_columns_make_the_action(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("model,temperature,template,propensity,reward\nm,0.2,plain,0.5,1\n"
                    "m,0.5,plain,0.5,0\n")
    summary = scan_log(FileLog(path))
    assert summary.action_ids == ("m|0.2|plain", "m|0.5|plain")


def write_log(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps({**GOOD, "action": "AB"[i % 2]}) + "\n"
                            for i in range(n)))
    return path


def test_probability_file_rows_are_checked(tmp_path: Path) -> None:
    log = FileLog(write_log(tmp_path, 3))
    probs = tmp_path / "p.csv"
    probs.write_text("A,B\n0.5,0.5\n0.7,0.7\n-0.1,1.1\n")
    with pytest.raises(LogError) as caught:
        evaluate(log, [ProbabilityFilePolicy(probs)])
    message = str(caught.value)
    assert "row 3: probabilities sum to 1.4, not 1" in message
    assert "row 4: A = -0.1 is not a probability" in message


@pytest.mark.parametrize(("rows", "expected"), [(2, "fewer rows"), (4, "more rows")])
def test_probability_file_must_align_with_the_log(tmp_path: Path, rows: int,
                                                  expected: str) -> None:
    log = FileLog(write_log(tmp_path, 3))
    probs = tmp_path / "p.csv"
    probs.write_text("A,B\n" + "0.5,0.5\n" * rows)
    with pytest.raises(LogError, match=expected):
        evaluate(log, [ProbabilityFilePolicy(probs)])


def test_unknown_format_and_empty_log(tmp_path: Path) -> None:
    with pytest.raises(LogError, match="unknown format"):
        evaluate(FileLog(tmp_path / "log.xlsx"), [UniformPolicy()])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(LogError, match="no rows"):
        evaluate(FileLog(empty), [UniformPolicy()])


def test_a_history_file_read_with_context_keeps_each_row_s_allowed_actions(
        catalog: Catalog, tmp_path: Path) -> None:
    python = catalog.indices_for_language("python")
    narrowed = [catalog.actions[k].id for k in python[:2]]
    base = HistoryRow(timestamp=datetime(2026, 2, 2, tzinfo=UTC), task_type="backend",
                      language="python", description="Add an endpoint",
                      outcome=Verdict.APPROVED, action=narrowed[1], reward=1.0,
                      propensity=0.5)
    path = tmp_path / "export.jsonl"
    write_history(path, [msgspec.structs.replace(base, allowed=narrowed,
                                                 probabilities=[0.5, 0.5]), base])
    (chunk,) = FileLog(str(path), catalog=catalog).chunks()
    assert chunk.contexts is not None
    assert [list(c.allowed) for c in chunk.contexts] == [list(python[:2]), list(python)]
