"""The learning benchmark's bookkeeping: contender names and ``vw:...`` exploration specs, when
traffic counts as moved away, and a short run whose contenders and references come out in the
right order."""

from __future__ import annotations

import argparse
import json
import math
import re
from pathlib import Path
from typing import get_args

import msgspec
import pytest

from learners.bandit.vw_bandit import BanditSettings, Exploration, vw_arguments
from offline.bandit_spec import METHOD_PARAMETERS, BanditSpecError, parse_bandit_spec
from offline.learning_bench import (
    DRIFT_WINDOW,
    PredictionAudit,
    command_line,
    configure_parser,
    contender_settings,
    decisions_to_move_away,
    run,
)

CONFIGURED = BanditSettings(exploration="squarecb", gamma_scale=200.0, epsilon=0.05,
                            learning_rate=0.5, interactions=("TM", "ML"))


@pytest.mark.parametrize(
    ("spec", "changed"),
    [
        ("vw:epsilon=0.1", {"exploration": "epsilon", "epsilon": 0.1}),
        ("vw:squarecb=1000", {"gamma_scale": 1000.0}),
        ("vw:cover=5", {"exploration": "cover", "cover_size": 5}),
        ("vw:bag=7,epsilon=0.1", {"exploration": "bag", "bag_size": 7, "epsilon": 0.1}),
        ("vw:softmax=10", {"exploration": "softmax", "softmax_lambda": 10.0}),
        ("vw:regcbopt", {"exploration": "regcbopt"}),
        ("vw:regcbopt=0.01,update_rule=adaptive",
         {"exploration": "regcbopt", "mellowness": 0.01, "update_rule": "adaptive"}),
        ("vw:squarecb,learning_rate=1", {"learning_rate": 1.0}),
        ("vw", {}),
    ],
)
def test_a_spec_overrides_only_what_it_names(spec: str, changed: dict[str, object]) -> None:
    settings = parse_bandit_spec(spec).apply(CONFIGURED)
    assert settings == msgspec.structs.replace(CONFIGURED, **changed)
    assert settings.interactions == ("TM", "ML")  # the rest of [bandit] is kept


def test_every_exploration_method_has_a_spec_parameter() -> None:
    assert set(METHOD_PARAMETERS) == set(get_args(Exploration))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("vw:regcb", "unknown exploration 'regcb'; known: epsilon, squarecb"),
        ("vw:greedy=1", "unknown exploration 'greedy'"),
        ("vw:bag=1", "Expected `int` >= 2 - at `$.bag_size`"),
        ("vw:squarecb=fast", "Expected `float`, got `str` - at `$.gamma_scale`"),
        ("vw:bag=5,bag_size=6", "bag_size is set twice"),
        ("vw:bag=5,size=6", "'size=6' is not FIELD=VALUE with FIELD one of epsilon"),
        ("vw:bag=5,epsilon", "'epsilon' is not FIELD=VALUE"),
        ("vw:epsilon,interactions=TM", "'interactions=TM' is not FIELD=VALUE"),
        ("vw:regcbopt,update_rule=fast", "Invalid enum value 'fast' - at `$.update_rule`"),
        ("river", "'river' is not a bandit spec"),
    ],
)
def test_a_bad_spec_is_named_with_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(BanditSpecError, match=re.escape(message)):
        parse_bandit_spec(spec)


def test_contenders_keep_their_names_and_settings() -> None:
    chosen = contender_settings(CONFIGURED, ["service", "vw-epsilon", "vw:cover=3", "uniform"])
    assert list(chosen) == ["service", "vw-epsilon", "vw:cover=3", "uniform"]
    assert chosen["service"] == CONFIGURED
    assert chosen["vw-epsilon"] == msgspec.structs.replace(CONFIGURED, exploration="epsilon")
    cover = chosen["vw:cover=3"]
    assert cover is not None
    assert "--cover 3 --epsilon 0.05" in vw_arguments(cover)
    assert chosen["uniform"] is None


def test_an_unknown_contender_stops_the_run_with_the_known_ones() -> None:
    with pytest.raises(SystemExit, match="unknown contender 'vw-greedy'; known: service, "
                       "vw-epsilon, uniform, river, hybrid, batch-greedy, hybrid-batch, "
                       "hybrid-residual, stack-vw, stack-vw-river, "
                       "stack-own-batch, hybrid-own-batch or vw:METHOD"):
        contender_settings(CONFIGURED, ["service", "vw-greedy"])
    with pytest.raises(SystemExit, match=re.escape("contender 'vw:cover=0'")):
        contender_settings(CONFIGURED, ["vw:cover=0"])


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
                              drift_at=None, prediction_audit=False, warm=0)
    run(args)
    data = json.loads(out.read_text())
    results = {r["name"]: r for r in data["results"]}
    reference = data["references"]["4"]
    assert results["uniform"]["mean_reward"] < reference["oracle"]
    assert results["service"]["mean_reward"] < reference["oracle"]
    assert results["uniform"]["mean_reward"] < reference["best_fixed"] < reference["oracle"]
    assert 0.0 < results["uniform"]["fraction_of_oracle"] < 1.0


def test_prediction_audit_scores_are_log_loss_and_brier() -> None:
    audit = PredictionAudit(batch=None)
    audit.outcomes = [1.0, 0.0, 1.0]
    audit.predicted = {"river": [0.8, 0.4, 0.5], "online stats": [0.5, 0.5, 0.5]}
    scores = audit.scores()
    expected = -(math.log(0.8) + math.log(0.6) + math.log(0.5)) / 3
    assert scores["river"]["log_loss"] == pytest.approx(expected)
    assert scores["river"]["brier"] == pytest.approx((0.04 + 0.16 + 0.25) / 3)
    assert scores["online stats"]["log_loss"] == pytest.approx(math.log(2))
    assert audit.scores(start=2)["river"]["brier"] == pytest.approx(0.25)


@pytest.mark.parametrize(
    "argv",
    [
        ["--n", "300", "--seeds", "4", "--contenders", "service", "uniform"],
        ["--n", "500", "--warm", "100", "--seeds", "1", "2", "--contenders", "service",
         "--config", "configs/catalog-200.toml", "--profile", "cost"],
        ["--n", "6000", "--seeds", "3", "--contenders", "service", "--drift-model",
         "code-specialist", "--drift-at", "3000", "--profile", "quality"],
    ],
)
def test_the_printed_command_reproduces_the_run(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    args = parser.parse_args(argv)
    printed = command_line(args, args.seeds)
    assert printed.startswith("router bench-learning ")
    again = parser.parse_args(printed.split()[2:])
    assert vars(again) == vars(args)


def test_an_unknown_profile_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(n=10, seeds=[1], contenders=["uniform"], config=None,
                              profile="fastest", json=None, drift_model=None, drift_at=None,
                              prediction_audit=False, warm=0)
    assert run(args) == 2
    assert "unknown --profile 'fastest'; known: balanced, cost, quality" in capsys.readouterr().err
