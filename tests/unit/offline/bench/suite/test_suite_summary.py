"""Suite figures: normalised scores, margins, targets, environment selection, CLI options."""

from __future__ import annotations

import pytest

from offline.bench.bandit_spec import BanditSpecError
from offline.bench.suite.baselines import references
from offline.bench.suite.cli import configure_parser, run
from offline.bench.suite.registry import UnknownEnvironmentError, all_environments, select
from offline.bench.suite.router_contender import router_variants
from offline.bench.suite.runner import ContenderRun, JobResult
from offline.bench.suite.summary import summarise
from router.settings import load_settings


def _run(mean: float) -> ContenderRun:
    return ContenderRun(mean=mean, early=mean, late=mean, curve=[mean], seconds=0.0)


def _job(env: str, seed: int, router: float, plain: float, kind: str = "world",
         skyline: float | None = None) -> JobResult:
    import numpy as np

    # uniform 0.5, best fixed 0.6 (the middle column), oracle 0.9, the same in each half
    table = np.array([[0.9, 0.6, 0.0], [0.0, 0.6, 0.9]] * 2)
    return JobResult(env=env, kind=kind, seed=seed, steps=4, actions=3,  # type: ignore[arg-type]
                     references=references(table, skyline),
                     runs={"router": _run(router), "plain-vw": _run(plain),
                           "thompson": _run(0.55)})


def test_normalised_score_and_margin() -> None:
    jobs = [_job("a", 1, 0.70, 0.64), _job("a", 2, 0.74, 0.66)]
    refs = jobs[0].references
    assert (refs.uniform, refs.best_fixed, refs.oracle) == pytest.approx((0.5, 0.6, 0.9))
    summary = summarise(jobs, ["router"])
    env = summary.envs[0]
    row = env.row("router")
    assert (row.mean, row.min, row.max) == pytest.approx((0.72, 0.70, 0.74))
    assert row.normalised == pytest.approx((0.72 - 0.5) / 0.4)
    assert env.margins["router"] == pytest.approx(0.72 - 0.65)  # plain VW beats best fixed
    assert env.row("uniform").normalised == pytest.approx(0.0)
    assert env.row("oracle").normalised == pytest.approx(1.0)
    assert summary.aggregates["world"]["router"] == pytest.approx(0.55)


def test_targets_report_the_environments_that_miss_them() -> None:
    jobs = [_job("good", 1, 0.89, 0.6), _job("bad", 1, 0.58, 0.62),
            _job("cls", 1, 0.68, 0.5, kind="classification", skyline=0.8)]
    summary = summarise(jobs, ["router"])
    checks = {c.target.split(":")[0]: c for c in summary.targets["router"][1:]}
    margin = summary.targets["router"][0]
    assert margin.met is False
    assert "bad -0.0400" in margin.figure
    assert summary.worst_margin["router"] == ("bad", pytest.approx(-0.04))
    assert checks["simulated worlds"].met is False  # (0.975 + 0.2) / 2
    cls = checks["classification sets"]
    assert cls.met is True
    assert "0.850" in cls.figure
    assert checks["real outcomes"].met is None
    # The classification set is normalised against its skyline, not the oracle.
    assert summary.envs[2].row("router").normalised == pytest.approx((0.68 - 0.5) / 0.3)


def test_seed_spread_target() -> None:
    jobs = [_job("a", 1, 0.60, 0.5), _job("a", 2, 0.80, 0.5), _job("a", 3, 0.80, 0.5)]
    spread = summarise(jobs, ["router"]).targets["router"][1]
    assert spread.met is False
    assert "min 0.6000" in spread.figure


def test_environments_are_selected_by_name_and_pattern() -> None:
    envs = all_environments()
    assert [e.name for e in select(envs, "world-sparse")] == ["world-sparse"]
    drift = [e.name for e in select(envs, "world-*drift,world-two-actions")]
    assert drift == ["world-two-actions", "world-abrupt-drift", "world-gradual-drift"]
    assert len(select(envs, None)) == len(envs)
    with pytest.raises(UnknownEnvironmentError, match="world-nope"):
        select(envs, "world-nope")


def test_router_variants_are_named_bandit_specs() -> None:
    settings = load_settings(None, {})
    variants = router_variants(settings.bandit, settings.drift, ["sq10=vw:squarecb=10"])
    assert [v.name for v in variants] == ["router", "sq10"]
    assert variants[0].bandit == settings.bandit
    assert variants[1].bandit.gamma_scale == 10.0
    for bad in ("vw:squarecb=10", "router=vw", "x=vw:nonsense"):
        with pytest.raises(BanditSpecError):
            router_variants(settings.bandit, settings.drift, [bad])


def test_bad_options_exit_with_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser()
    configure_parser(parser)
    assert run(parser.parse_args(["--envs", "nope-*"])) == 2
    assert "matches no environment" in capsys.readouterr().err
    assert run(parser.parse_args(["--router", "bad"])) == 2
    assert run(parser.parse_args(["--steps-scale", "0"])) == 2
