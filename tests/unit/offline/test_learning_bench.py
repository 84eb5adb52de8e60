"""The learning benchmark's bookkeeping: when traffic counts as moved away, and a short run
whose contenders and references come out in the right order."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from offline.learning_bench import DRIFT_WINDOW, decisions_to_move_away, run


def test_moving_away_is_measured_on_a_trailing_window() -> None:
    before = ["a", "b"] * DRIFT_WINDOW  # share of "a": 0.5 before the drift at 400
    after = ["a"] * 50 + ["b"] * 1000
    models = before + after
    # The trailing window's share of "a" falls below 0.25 once fewer than 50 "a" remain in it.
    moved = decisions_to_move_away(models, "a", 2 * DRIFT_WINDOW)
    assert moved == DRIFT_WINDOW + 1
    assert decisions_to_move_away(["b"] * 1000, "a", 500) is None  # no traffic to lose
    assert decisions_to_move_away(["a"] * 1000, "a", 500) is None  # never moved


def test_a_short_run_ranks_the_service_between_uniform_and_the_oracle(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = argparse.Namespace(n=300, seeds=[4], contenders=["service", "uniform"], config=None,
                              profile="balanced", json=str(out), drift_model=None,
                              drift_at=None)
    run(args)
    data = json.loads(out.read_text())
    results = {r["name"]: r for r in data["results"]}
    reference = data["references"]["4"]
    assert results["uniform"]["mean_reward"] < reference["oracle"]
    assert results["service"]["mean_reward"] < reference["oracle"]
    assert results["uniform"]["mean_reward"] < reference["best_fixed"] < reference["oracle"]
    assert 0.0 < results["uniform"]["fraction_of_oracle"] < 1.0
