"""The promotion gate's rule (``offline.promote.judge``) on seeded logs: no promotion on a
small effective sample size, intervals inside the reward range, a clear win still passes."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from offline.promote import MIN_ESS, format_evidence, judge
from offline.replay.estimators import EstimatorOptions
from offline.replay.evaluate import evaluate
from offline.replay.log import LogChunk
from offline.replay.policies import FixedPolicy, LoggedPolicy


class UniformLog:
    """``rows`` decisions logged uniformly over ``actions``; action ``a0`` earns
    Bernoulli(``best``), every other Bernoulli(0.5)."""

    name = "uniform log"

    def __init__(self, rows: int, actions: int, best: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.ids = np.asarray([f"a{k}" for k in range(actions)], dtype=object)
        self.chosen = rng.integers(0, actions, rows)
        self.reward = (rng.random(rows) < np.where(self.chosen == 0, best, 0.5)).astype(float)
        self.propensity = np.full(rows, 1.0 / actions)

    def chunks(self) -> Iterator[LogChunk]:
        n = len(self.chosen)
        yield LogChunk(rows=np.arange(1, n + 1), actions=self.ids[self.chosen],
                       propensity=self.propensity, reward=self.reward,
                       timestamp=np.full(n, np.nan))


def gate(log: UniformLog, options: EstimatorOptions) -> tuple[bool, str, float, float]:
    report = evaluate(log, [LoggedPolicy(), FixedPolicy("a0")], options)
    passed, evidence, reason = judge("fixed:a0", report, "fixed:a0", options)
    assert "unsupported" in format_evidence(evidence)
    return passed, reason, evidence.candidate.ess, evidence.candidate.dr.ci[1]


def test_a_small_effective_sample_is_refused_whatever_its_interval() -> None:
    # 3,000 rows over 200 actions: the candidate's action was logged about 15 times, each
    # with weight 200 (the ESS 15 of 3,000). It always succeeds there, so its DR
    # interval sits far above the logged policy's value, yet 15 decisions prove little.
    options = EstimatorOptions(bootstrap=200, seed=1)
    passed, reason, ess, _ = gate(UniformLog(3000, 200, best=1.0, seed=1), options)
    assert ess < MIN_ESS
    assert not passed
    assert f"effective sample size {ess:,.1f} of 3,000 decisions is below --min-ess 100" in reason


def test_interval_ends_stay_in_the_reward_range() -> None:
    clipped = 0
    for seed in range(10):
        options = EstimatorOptions(bootstrap=200, seed=seed)
        report = evaluate(UniformLog(3000, 200, best=0.9, seed=seed),
                          [LoggedPolicy(), FixedPolicy("a0")], options)
        for policy in report.policies.values():
            for estimate in policy.estimates.values():
                for low, high in (estimate.ci, estimate.ci_analytic):
                    assert 0.0 <= low <= high <= 1.0
        dr = report.policies["fixed:a0"].estimates["dr"]
        # The normal interval of 15-odd rows near 0.9 often reaches above 1: its end is
        # clipped, and the clipping is reported.
        reaches_above = dr.value + 1.959964 * dr.se > 1.0
        if reaches_above:
            assert dr.clipped
            assert dr.ci_analytic[1] == 1.0
        clipped += reaches_above
    assert clipped >= 3


def test_a_clear_win_on_enough_decisions_is_promoted() -> None:
    options = EstimatorOptions(bootstrap=200, seed=2)
    passed, reason, ess, high = gate(UniformLog(3000, 3, best=0.8, seed=2), options)
    assert ess > MIN_ESS
    assert passed, reason
    assert high <= 1.0
