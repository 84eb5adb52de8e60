"""Every estimator against values computed by hand on a four-row log."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from offline.replay.errors import ReplayError
from offline.replay.estimators import (
    EstimatorOptions,
    PolicyAccumulator,
    effective_sample_size,
    estimate_dr,
    estimate_ips,
    estimate_snips,
    estimate_switch_dr,
    importance_weight_variance,
    importance_weights,
    poisson_table,
    weight_edges,
)
from offline.replay.evaluate import evaluate
from offline.replay.log import FileLog
from offline.replay.policies import (
    FixedPolicy,
    LoggedPolicy,
    ProbabilityFilePolicy,
    UniformPolicy,
)

# action, propensity, reward; the target plays A with 0.9 and B with 0.1 on every row.
ROWS = [("A", 0.5, 1.0), ("B", 0.25, 0.0), ("A", 0.8, 0.5), ("B", 0.5, 1.0)]
# w = 0.9/0.5, 0.1/0.25, 0.9/0.8, 0.1/0.5
WEIGHTS = [1.8, 0.4, 1.125, 0.2]
# q̂(A) = (1 + 0.5)/2, q̂(B) = (0 + 1)/2; dm_i = 0.9·0.75 + 0.1·0.5 = 0.725
HAND = {
    "ips": (1.8 + 0.0 + 0.5625 + 0.2) / 4,  # 0.640625
    "snips": 2.5625 / 3.525,
    "dm": 0.725,
    # residuals r − q̂(a): 0.25, −0.5, −0.25, 0.5; weighted: 0.45, −0.2, −0.28125, 0.1
    "dr": 0.725 + (0.45 - 0.2 - 0.28125 + 0.1) / 4,  # 0.7421875
    # τ = 1 keeps the correction only on rows 2 and 4
    "switch-dr": 0.725 + (-0.2 + 0.1) / 4,  # 0.7
}


def write_log(tmp_path: Path, rows: list[tuple[str, float, float]] = ROWS) -> Path:
    path = tmp_path / "log.jsonl"
    path.write_text("".join(
        json.dumps({"action": a, "propensity": p, "reward": r,
                    "timestamp": f"2026-01-0{1 + i % 9}T10:00:00Z"}) + "\n"
        for i, (a, p, r) in enumerate(rows)))
    return path


def write_probs(tmp_path: Path, n: int = len(ROWS)) -> Path:
    path = tmp_path / "target.csv"
    path.write_text("A,B\n" + "0.9,0.1\n" * n)
    return path


@pytest.mark.parametrize("chunk_rows", [1, 3, 100])
def test_estimates_equal_hand_computed_values(tmp_path: Path, chunk_rows: int) -> None:
    log = FileLog(write_log(tmp_path), chunk_rows=chunk_rows)
    policy = ProbabilityFilePolicy(write_probs(tmp_path), name="target", chunk_rows=2)
    report = evaluate(log, [policy], EstimatorOptions(switch_tau=1.0, bootstrap=0))
    result = report.policies["target"]
    for name, value in HAND.items():
        assert result.estimates[name].value == pytest.approx(value, abs=1e-12), name
    assert result.n == 4
    assert result.ess == pytest.approx(3.525 ** 2 / (1.8**2 + 0.4**2 + 1.125**2 + 0.2**2))
    assert result.max_weight == pytest.approx(1.8)
    assert result.unsupported_share == 0.0
    se = statistics.stdev([1.8, 0.0, 0.5625, 0.2]) / 2.0
    assert result.estimates["ips"].se == pytest.approx(se)
    # The normal interval HAND["ips"] ± 1.96 se, [−0.150, 1.432], is clipped to the reward
    # range [0, 1]; the estimate itself is not.
    assert result.estimates["ips"].ci_analytic == (0.0, 1.0)
    assert result.estimates["ips"].clipped
    dr = result.estimates["dr"]
    # DR's [0.41, 1.08]: only the upper end is clipped.
    assert dr.ci_analytic[0] == pytest.approx(HAND["dr"] - 1.959964 * dr.se, abs=1e-5)
    assert dr.ci_analytic[0] > 0.0
    assert dr.ci_analytic[1] == 1.0 < HAND["dr"] + 1.959964 * dr.se
    assert dr.clipped
    assert result.estimates["ips"].ci == result.estimates["ips"].ci_analytic


def test_array_functions_match_hand_values() -> None:
    target = np.array([0.9, 0.1, 0.9, 0.1])
    propensity = np.array([p for _, p, _ in ROWS])
    reward = np.array([r for _, _, r in ROWS])
    w = importance_weights(target, propensity)
    np.testing.assert_allclose(w, WEIGHTS)
    q = np.array([0.75, 0.5, 0.75, 0.5])
    dm = np.full(4, 0.725)
    assert estimate_ips(w, reward) == pytest.approx(HAND["ips"])
    assert estimate_snips(w, reward) == pytest.approx(HAND["snips"])
    assert estimate_dr(w, reward, q, dm) == pytest.approx(HAND["dr"])
    assert estimate_switch_dr(w, reward, q, dm, 1.0) == pytest.approx(HAND["switch-dr"])
    assert effective_sample_size(w) == pytest.approx(3.525**2 / 4.705625)


def test_clipping_caps_weights(tmp_path: Path) -> None:
    log = FileLog(write_log(tmp_path))
    policy = ProbabilityFilePolicy(write_probs(tmp_path), name="target")
    report = evaluate(log, [policy], EstimatorOptions(clip=1.0, bootstrap=0))
    result = report.policies["target"]
    # clipped weights 1, 0.4, 1, 0.2
    assert result.estimates["ips"].value == pytest.approx((1.0 + 0.0 + 0.5 + 0.2) / 4)
    assert result.estimates["snips"].value == pytest.approx(1.7 / 2.6)
    assert result.clipped_rows == 2
    assert result.max_weight == pytest.approx(1.8)  # the diagnostic reports the raw weight


def test_logged_uniform_and_fixed(tmp_path: Path) -> None:
    log = FileLog(write_log(tmp_path))
    report = evaluate(log, [LoggedPolicy(), UniformPolicy(), FixedPolicy("B")],
                      EstimatorOptions(bootstrap=0))
    logged = report.policies["logged"].estimates
    for name in ("ips", "snips", "dr", "dm"):
        assert logged[name].value == pytest.approx(0.625), name
    uniform = report.policies["uniform"].estimates
    # w = 0.5/p: 1, 2, 0.625, 1
    assert uniform["ips"].value == pytest.approx((1.0 + 0.0 + 0.3125 + 1.0) / 4)
    assert uniform["snips"].value == pytest.approx(2.3125 / 4.625)
    fixed = report.policies["fixed:B"].estimates
    # w = 0, 4, 0, 2; DR = q̂(B) + mean(w (r − q̂(a))) = 0.5 + (4·(−0.5) + 2·0.5)/4
    assert fixed["ips"].value == pytest.approx((0.0 + 2.0) / 4)
    assert fixed["snips"].value == pytest.approx(2.0 / 6.0)
    assert fixed["dm"].value == pytest.approx(0.5)
    assert fixed["dr"].value == pytest.approx(0.5 + (-2.0 + 1.0) / 4)
    assert report.logged_reward == pytest.approx(0.625)


def test_fixed_action_never_logged_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="never chose 'C'"):
        evaluate(FileLog(write_log(tmp_path)), [FixedPolicy("C")])


def test_mass_on_actions_the_logger_never_chose_is_reported(tmp_path: Path) -> None:
    probs = tmp_path / "probs.csv"
    probs.write_text("A,B,C\n0.5,0.25,0.25\n1,0,0\n0,0,1\n0.5,0.5,0\n")
    report = evaluate(FileLog(write_log(tmp_path)), [ProbabilityFilePolicy(probs, name="t")],
                      EstimatorOptions(bootstrap=0))
    result = report.policies["t"]
    assert result.unsupported_share == pytest.approx(0.5)
    assert result.unsupported_mass == pytest.approx((0.25 + 1.0) / 4)
    assert report.actions == 3


def test_bootstrap_interval_brackets_the_estimate_and_is_seeded(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    rows = [(str(a), 0.5, float(r)) for a, r in zip(rng.integers(0, 2, 400),
                                                     rng.random(400), strict=True)]
    rows = [("A" if a == "0" else "B", p, r) for a, p, r in rows]
    path = write_log(tmp_path, rows)
    options = EstimatorOptions(bootstrap=200, seed=5)
    first = evaluate(FileLog(path, chunk_rows=64), [FixedPolicy("A")], options)
    again = evaluate(FileLog(path, chunk_rows=64), [FixedPolicy("A")], options)
    for name, interval in first.policies["fixed:A"].estimates.items():
        low, high = interval.ci
        assert low - 1e-12 <= interval.value <= high + 1e-12, name
        assert interval.ci == again.policies["fixed:A"].estimates[name].ci
        # bootstrap and analytic intervals agree in width to within a third on 400 rows
        a_low, a_high = interval.ci_analytic
        assert (high - low) == pytest.approx(a_high - a_low, rel=0.33, abs=1e-9), name


def test_poisson_table_has_poisson_one_probabilities() -> None:
    frequencies = np.bincount(poisson_table(), minlength=8)[:8] / 65536
    exact = [np.exp(-1.0) / np.prod(np.arange(1, k + 1)) for k in range(8)]
    np.testing.assert_allclose(frequencies, exact, atol=2 / 65536)


@pytest.mark.parametrize("kwargs", [{"clip": 0.0}, {"bootstrap": 5}, {"level": 1.0},
                                    {"switch_tau": -1.0}])
def test_bad_options_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ReplayError):
        EstimatorOptions(**kwargs)  # type: ignore[arg-type]


def test_importance_weight_variance_is_exact_over_the_supported_actions() -> None:
    logged = np.array([[0.98, 0.02, 0.0], [0.5, 0.5, 0.0]])
    target = np.array([[0.9, 0.1, 0.0], [0.25, 0.25, 0.5]])
    # Row 1: 0.9²/0.98 + 0.1²/0.02 − 1²; row 2: the third action is unsupported, so the
    # weights' mean is 0.5 and their variance 0.25²/0.5 · 2 − 0.5².
    expected = [0.81 / 0.98 + 0.01 / 0.02 - 1.0, 0.0625 / 0.5 * 2 - 0.25]
    assert importance_weight_variance(target, logged) == pytest.approx(expected)
    # Against a simulation of row 1.
    rng = np.random.default_rng(3)
    drawn = rng.choice(2, size=400_000, p=logged[0, :2])
    weights = target[0, drawn] / logged[0, drawn]
    assert weights.var() == pytest.approx(expected[0], rel=0.02)


def _mean_weight_diagnostics(exact: bool) -> tuple[float, float]:
    """A short log of a logger that rarely takes the second action, and a target that takes it
    five times as often: the log never drew it (4 draws expected; 0.98²⁰⁰, about 2% of logs)."""
    logged = np.tile([0.98, 0.02], (200, 1))
    target = np.tile([0.9, 0.1], (200, 1))
    action = np.zeros(200, dtype=np.int64)
    rows = np.arange(200)
    accumulator = PolicyAccumulator(EstimatorOptions(bootstrap=0), weight_edges(50.0))
    accumulator.add(
        target=target[rows, action], propensity=logged[rows, action], reward=np.ones(200),
        q_logged=np.zeros(200), dm=np.zeros(200), unsupported=np.zeros(200), draws=None,
        weight_variance=importance_weight_variance(target, logged) if exact else None)
    diagnostics = accumulator.diagnostics()
    return diagnostics.mean_weight, diagnostics.mean_weight_se


def test_the_mean_weight_error_uses_the_logger_vectors_when_known() -> None:
    mean, sample_se = _mean_weight_diagnostics(exact=False)
    assert mean == pytest.approx(0.9 / 0.98)  # 0.918
    # From the sample alone the gap to 1 is more than 4 standard errors (replay's warning) ...
    assert abs(mean - 1.0) > 4 * sample_se
    # ... from the logger's vectors it is about 2: sqrt(0.3265 / 200) = 0.040.
    _, exact_se = _mean_weight_diagnostics(exact=True)
    assert exact_se == pytest.approx(math.sqrt((0.81 / 0.98 + 0.5 - 1.0) / 200))
    assert abs(mean - 1.0) < 4 * exact_se
