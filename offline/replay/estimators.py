"""Off-policy value estimators over logged decisions, vectorised and streaming.

Notation, per logged row i: the logged action a_i drawn with propensity p_i, reward r_i, the
target policy's probability π_i = π(a_i | x_i), the importance weight w_i = π_i / p_i
(optionally clipped: min(w_i, M)), the reward model's prediction q̂_i = q̂(x_i, a_i) of the logged
action and its prediction under the target, dm_i = Σ_a π(a | x_i) q̂(x_i, a).

- ``dm``    direct method: mean(dm_i) (no weights; biased when the reward model is wrong);
- ``ips``   inverse propensity scoring: mean(w_i r_i) (unbiased without clipping);
- ``snips`` self-normalised IPS: Σ w_i r_i / Σ w_i (consistent; lower variance);
- ``dr``    doubly robust: mean(dm_i + w_i (r_i − q̂_i)) (unbiased when the propensities are);
- ``switch-dr`` (Wang, Agarwal & Dudík 2017, in the form Open Bandit Pipeline uses):
  mean(dm_i + 1[w_i ≤ τ] w_i (r_i − q̂_i)). Its expectation is Σ_a π(a|x) (r(x, a) on actions
  with weight ≤ τ, q̂(x, a) on the rest), so it needs only the logged action's propensity.

Support: the target's probability π(a|x_i) is *unsupported* where the logger gave the action
probability 0 in that row, and, for an action the log chose fewer than ``min_support`` times
("weak"), wherever the log cannot vouch for it: where the row's logger vector μ is known, the
excess (π − μ)⁺ (the part min(π, μ) has importance weight at most 1 and stays with the
estimators, so a target equal to the logger keeps every estimate exact); where it is not
known, all of π. A logged row of a weak action keeps the weight min(π, p_i)/p_i (known vector)
or 0. The log says nothing about the reward on that mass m_i, so it is imputed with the reward
model in every estimator, and both intervals widen by that mass times the reward range: the
lower end by
mean(Σ_U π (q̂ − r_min)), the upper by mean(Σ_U π (r_max − q̂)) (a partial-identification bound:
any reward in the range is consistent with the log on those pairs). SNIPS normalises over the
supported mass: mean(m_S) Σ w r / Σ w + mean(Σ_U π q̂).

Every interval end is then clipped to the reward range [r_min, r_max] (``Interval.clipped``
says when an end moved); the point estimate is left as computed.

Intervals: ``ci_analytic`` is the normal interval (the sample variance of the row terms; the
delta method for SNIPS), conditional on the reward model. ``ci`` is a percentile interval of a
Poisson bootstrap (each row gets a Poisson(1) count per replicate), which needs only running
sums, so memory does not grow with the log. The counts come from a 16-bit inverse-CDF table of
Poisson(1): its probabilities differ from the exact ones by less than 1/65536.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import msgspec
import numpy as np
import numpy.typing as npt

from learners.interval import Interval
from offline.replay.errors import ReplayError

FloatArray = npt.NDArray[np.float64]

ESTIMATORS = ("dm", "ips", "snips", "dr", "switch-dr")
_MEAN_TERMS = ("dm", "ips", "dr", "switch-dr")
# Column order of the bootstrap sums.
_BOOT = ("n", "w", "wr", "dm", "dr", "switch-dr")


class EstimatorOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Settings shared by every estimate of one evaluation.

    clip : cap on importance weights (None: no clipping).
    switch_tau : Switch-DR's threshold; rows whose weight exceeds it keep only the model term.
    bootstrap : number of Poisson-bootstrap replicates (0: analytic intervals only).
    level : confidence level of both intervals.
    seed : seeds the bootstrap.
    reward_range : the rewards' possible range [r_min, r_max]: intervals are clipped to it and
        widened over it on unsupported actions (see the module docstring).
    min_support : an action the log chose fewer times than this is unsupported everywhere.
    """

    clip: float | None = None
    switch_tau: float = 100.0
    bootstrap: int = 200
    level: float = 0.95
    seed: int = 0
    reward_range: tuple[float, float] = (0.0, 1.0)
    min_support: int = 1

    def __post_init__(self) -> None:
        if self.clip is not None and not self.clip > 0:
            raise ReplayError(f"clip: must be positive, got {self.clip}")
        if not self.switch_tau > 0:
            raise ReplayError(f"switch_tau: must be positive, got {self.switch_tau}")
        if self.bootstrap < 0 or 0 < self.bootstrap < 20:
            raise ReplayError(f"bootstrap: 0 or at least 20 replicates, got {self.bootstrap}")
        if not 0.5 <= self.level < 1.0:
            raise ReplayError(f"level: must lie in [0.5, 1), got {self.level}")
        low, high = self.reward_range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ReplayError(f"reward_range: needs finite min < max, got {self.reward_range}")
        if self.min_support < 1:
            raise ReplayError(f"min_support: must be at least 1, got {self.min_support}")


# --- the estimators on whole arrays (the definitions; tests compare the streaming sums) --------


def importance_weights(target: FloatArray, propensity: FloatArray,
                       clip: float | None = None) -> FloatArray:
    """w_i = π(a_i|x_i) / p_i, capped at ``clip`` when given."""
    weights: FloatArray = target / propensity
    return weights if clip is None else np.minimum(weights, clip)


def estimate_dm(dm: FloatArray) -> float:
    return float(np.mean(dm))


def estimate_ips(w: FloatArray, reward: FloatArray) -> float:
    return float(np.mean(w * reward))


def estimate_snips(w: FloatArray, reward: FloatArray) -> float:
    total = float(np.sum(w))
    return float(np.sum(w * reward)) / total if total > 0 else math.nan


def estimate_dr(w: FloatArray, reward: FloatArray, q_logged: FloatArray,
                dm: FloatArray) -> float:
    return float(np.mean(dm + w * (reward - q_logged)))


def estimate_switch_dr(w: FloatArray, reward: FloatArray, q_logged: FloatArray,
                       dm: FloatArray, tau: float) -> float:
    return float(np.mean(dm + np.where(w <= tau, w * (reward - q_logged), 0.0)))


def effective_sample_size(w: FloatArray) -> float:
    """Kish's effective sample size (Σw)² / Σw² (0 when every weight is 0)."""
    squares = float(np.sum(w * w))
    return float(np.sum(w)) ** 2 / squares if squares > 0 else 0.0


# --- streaming ----------------------------------------------------------------------------------


class _Moments:
    """Count, mean and centred sum of squares, merged chunk by chunk (Chan et al.)."""

    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add(self, values: FloatArray) -> None:
        k = len(values)
        if k == 0:
            return
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.n + k
        delta = mean - self.mean
        self.mean += delta * k / total
        self.m2 += m2 + delta * delta * self.n * k / total
        self.n = total

    @property
    def variance(self) -> float:
        return self.m2 / (self.n - 1) if self.n > 1 else math.nan


def bounded_interval(interval: tuple[float, float], widen: tuple[float, float],
                     reward_range: tuple[float, float]) -> tuple[tuple[float, float], bool]:
    """``interval`` widened by ``widen`` (subtracted from the low end, added to the high end),
    then clipped to ``reward_range``; returns it and whether clipping moved an end."""
    low, high = interval[0] - widen[0], interval[1] + widen[1]
    r_min, r_max = reward_range
    clipped_low = min(max(low, r_min), r_max)
    clipped_high = max(min(high, r_max), r_min)
    moved = (clipped_low != low or clipped_high != high) and math.isfinite(low + high)
    return (clipped_low, clipped_high), moved


class Diagnostics(msgspec.Struct, frozen=True):
    """Weight diagnostics of one target policy on one log."""

    n: int
    ess: float
    max_weight: float
    mean_weight: float
    mean_weight_se: float
    clipped_rows: int
    unsupported_share: float
    unsupported_mass: float


class WeightHistogram(msgspec.Struct, frozen=True):
    """Counts of importance weights: ``zero`` rows with weight 0, then log-spaced bins."""

    zero: int
    edges: list[float]
    counts: list[int]


def poisson_table() -> npt.NDArray[np.uint8]:
    """Poisson(1) quantiles at the midpoints of a 16-bit grid (see the module docstring)."""
    k = np.arange(16, dtype=np.float64)
    pmf = np.exp(-1.0) / np.cumprod(np.concatenate([[1.0], k[1:]]))
    grid = (np.arange(65536, dtype=np.float64) + 0.5) / 65536.0
    return np.searchsorted(np.cumsum(pmf), grid, side="right").astype(np.uint8)


class BootstrapDraws:
    """Poisson(1) replicate counts, one (replicates × rows) block per chunk, shared by every
    policy so that their intervals come from the same resamples."""

    def __init__(self, replicates: int, seed: int) -> None:
        self.replicates = replicates
        self._rng = np.random.default_rng(seed)
        self._table = poisson_table() if replicates else np.zeros(0, dtype=np.uint8)

    def draw(self, rows: int) -> npt.NDArray[np.float32] | None:
        if not self.replicates:
            return None
        codes = self._rng.integers(0, 65536, (self.replicates, rows), dtype=np.uint16)
        return np.take(self._table, codes).astype(np.float32)


def importance_weight_variance(target: FloatArray, logged: FloatArray) -> FloatArray:
    """Each row's variance of the importance weight π(a)/μ(a) with a drawn from the logger μ:
    Σ π(a)²/μ(a) − (Σ π(a))², both sums over the actions μ gives positive probability
    (``target`` and ``logged`` are rows × actions matrices)."""
    supported = logged > 0.0
    safe = np.where(supported, logged, 1.0)
    second: FloatArray = np.where(supported, target * target / safe, 0.0).sum(axis=1)
    first: FloatArray = np.where(supported, target, 0.0).sum(axis=1)
    return second - first * first


class RowSupport(msgspec.Struct, frozen=True):
    """Per-row support terms of one target policy on one chunk (see the module docstring).

    unsupported : the target's mass on unsupported actions, m_i.
    imputed : the reward model's value of that mass, Σ_U π q̂.
    below : how far that value can fall, Σ_U π (q̂ − r_min).
    above : how far it can rise, Σ_U π (r_max − q̂).
    """

    unsupported: FloatArray
    imputed: FloatArray
    below: FloatArray
    above: FloatArray

    @classmethod
    def none(cls, rows: int) -> RowSupport:
        zeros = np.zeros(rows)
        return cls(unsupported=zeros, imputed=zeros, below=zeros, above=zeros)


def row_support(mass: FloatArray, predicted: FloatArray,
                reward_range: tuple[float, float]) -> RowSupport:
    """:class:`RowSupport` of the target's (rows × actions) unsupported probability ``mass``,
    given the reward model's (rows × actions) predictions."""
    r_min, r_max = reward_range
    return RowSupport(unsupported=mass.sum(axis=1),
                      imputed=np.einsum("ij,ij->i", mass, predicted),
                      below=np.einsum("ij,ij->i", mass, predicted - r_min),
                      above=np.einsum("ij,ij->i", mass, r_max - predicted))


class PolicyAccumulator:
    """Running sums of one target policy's row terms; :meth:`result` gives the estimates."""

    def __init__(self, options: EstimatorOptions, weight_edges: FloatArray,
                 reward_range: tuple[float, float] | None = None) -> None:
        self.options = options
        self.reward_range = reward_range or options.reward_range
        self._moments = {name: _Moments() for name in _MEAN_TERMS}
        self._sum_w = 0.0
        self._sum_w2 = 0.0
        self._sum_wr = 0.0
        self._sum_w2r = 0.0
        self._sum_w2r2 = 0.0
        self._max_w = 0.0
        # Rows whose weight variance is known exactly (None once a row's is not).
        self._exact_rows: int | None = 0
        self._sum_weight_variance = 0.0
        self._clipped = 0
        self._unsupported_rows = 0
        self._unsupported_mass = 0.0
        self._imputed = 0.0
        self._below = 0.0
        self._above = 0.0
        self._boot = np.zeros((options.bootstrap, len(_BOOT)), dtype=np.float64)
        self._edges = weight_edges
        self._zero = 0
        self._counts = np.zeros(len(weight_edges) - 1, dtype=np.int64)

    def add(self, *, target: FloatArray, propensity: FloatArray, reward: FloatArray,
            q_logged: FloatArray, dm: FloatArray, unsupported: FloatArray | RowSupport,
            draws: npt.NDArray[np.float32] | None,
            weight_variance: FloatArray | None = None) -> dict[str, FloatArray]:
        """Fold in one chunk; returns the chunk's per-row DR terms and weights (for plots).

        ``target``: the target's probability of each logged action, 0 where that action is
        unsupported in the row. ``dm``: Σ_a π(a|x_i) q̂(x_i, a) over every action.
        ``unsupported``: the rows' :class:`RowSupport` (or only the unsupported mass m_i, for
        callers that impute nothing). ``weight_variance``: each row's exact variance of the
        unclipped importance weight under the logger (:func:`importance_weight_variance`),
        when the log knows the logger's whole probability vector."""
        support = (unsupported if isinstance(unsupported, RowSupport)
                   else RowSupport(unsupported=unsupported, imputed=np.zeros(len(unsupported)),
                                   below=np.zeros(len(unsupported)),
                                   above=np.zeros(len(unsupported))))
        if weight_variance is None:
            self._exact_rows = None
        elif self._exact_rows is not None:
            self._exact_rows += len(weight_variance)
            self._sum_weight_variance += float(weight_variance.sum())
        raw = target / propensity
        self._max_w = max(self._max_w, float(raw.max(initial=0.0)))
        clip = self.options.clip
        if clip is not None:
            self._clipped += int(np.count_nonzero(raw > clip))
        w = importance_weights(target, propensity, clip)
        wr = w * reward
        residual = w * (reward - q_logged)
        terms = {"dm": dm, "ips": wr + support.imputed, "dr": dm + residual,
                 "switch-dr": dm + np.where(w <= self.options.switch_tau, residual, 0.0)}
        for name, values in terms.items():
            self._moments[name].add(values)
        w2 = w * w
        self._sum_w += float(w.sum())
        self._sum_w2 += float(w2.sum())
        self._sum_wr += float(wr.sum())
        self._sum_w2r += float((w2 * reward).sum())
        self._sum_w2r2 += float((w2 * reward * reward).sum())
        self._unsupported_rows += int(np.count_nonzero(support.unsupported > 0))
        self._unsupported_mass += float(support.unsupported.sum())
        self._imputed += float(support.imputed.sum())
        self._below += float(support.below.sum())
        self._above += float(support.above.sum())
        positive = w[w > 0]
        self._zero += len(w) - len(positive)
        upper = self._edges[-1]
        clipped_bins = np.clip(positive, self._edges[0], np.nextafter(upper, 0.0))
        self._counts += np.histogram(clipped_bins, bins=self._edges)[0]
        if draws is not None:
            # Centred per chunk so that float32 products lose nothing on near-constant terms.
            columns = np.stack([np.ones_like(w), w, wr, dm, terms["dr"], terms["switch-dr"]],
                               axis=1)
            centre = columns.mean(axis=0)
            counts = draws.sum(axis=1, dtype=np.float64)
            self._boot += (draws @ (columns - centre).astype(np.float32)).astype(np.float64)
            self._boot += np.outer(counts, centre)
        return {"dr": terms["dr"], "w": w}

    @property
    def n(self) -> int:
        return self._moments["ips"].n

    def diagnostics(self) -> Diagnostics:
        n = self.n
        ess = self._sum_w ** 2 / self._sum_w2 if self._sum_w2 > 0 else 0.0
        mean_w = self._sum_w / n if n else math.nan
        if n and self._exact_rows == n:
            # The logger's vectors give each row's weight variance exactly; the sample
            # variance misses the rare large weights that a short log has not drawn yet, and
            # made a correct target look biased.
            mean_w_se = math.sqrt(max(self._sum_weight_variance, 0.0)) / n
        elif n > 1:
            spread = self._sum_w2 / n - mean_w * mean_w
            mean_w_se = math.sqrt(max(spread, 0.0) / (n - 1))
        else:
            mean_w_se = math.nan
        return Diagnostics(n=n, ess=ess, max_weight=self._max_w, mean_weight=mean_w,
                           mean_weight_se=mean_w_se,
                           clipped_rows=self._clipped,
                           unsupported_share=self._unsupported_rows / n if n else math.nan,
                           unsupported_mass=self._unsupported_mass / n if n else math.nan)

    def histogram(self) -> WeightHistogram:
        return WeightHistogram(zero=self._zero, edges=[float(e) for e in self._edges],
                               counts=[int(c) for c in self._counts])

    def result(self) -> dict[str, Interval]:
        """Every estimator's value with its bootstrap and analytic intervals (widened over the
        unsupported mass and clipped to the reward range)."""
        n = self.n
        if n == 0:
            raise ReplayError("no rows to estimate from")
        z = NormalDist().inv_cdf(0.5 + self.options.level / 2.0)
        values: dict[str, float] = {name: self._moments[name].mean for name in _MEAN_TERMS}
        ses: dict[str, float] = {name: math.sqrt(self._moments[name].variance / n)
                                 for name in _MEAN_TERMS}
        supported = 1.0 - self._unsupported_mass / n
        imputed = self._imputed / n
        ratio = self._sum_wr / self._sum_w if self._sum_w > 0 else math.nan
        values["snips"] = supported * ratio + imputed
        mean_w = self._sum_w / n
        if self._sum_w > 0 and n > 1:
            # Delta method: Var(Σwr/Σw) ≈ mean((w (r − V))²) / (n mean(w)²).
            spread = self._sum_w2r2 - 2 * ratio * self._sum_w2r + ratio * ratio * self._sum_w2
            ses["snips"] = supported * math.sqrt(max(spread, 0.0) / n / (n * mean_w * mean_w))
        else:
            ses["snips"] = math.nan
        widen = (self._below / n, self._above / n)
        boot = self._bootstrap_replicates(supported, imputed)
        out: dict[str, Interval] = {}
        for name in ESTIMATORS:
            value, se = values[name], ses[name]
            analytic = (value - z * se, value + z * se)
            ci = analytic
            if boot is not None:
                replicate = boot[name]
                replicate = replicate[np.isfinite(replicate)]
                if len(replicate):
                    alpha = (1.0 - self.options.level) / 2.0
                    low, high = np.quantile(replicate, [alpha, 1.0 - alpha])
                    ci = (float(low), float(high))
            ci, moved = bounded_interval(ci, widen, self.reward_range)
            analytic, moved_analytic = bounded_interval(analytic, widen, self.reward_range)
            out[name] = Interval(value=value, ci=ci, ci_analytic=analytic, se=se,
                                 clipped=moved or moved_analytic)
        return out

    def _bootstrap_replicates(self, supported: float, imputed: float
                              ) -> dict[str, FloatArray] | None:
        """Replicates of every estimator. IPS's and SNIPS's imputed part (zero unless the
        target has unsupported mass) enters at its full-sample mean: the widening over that
        mass is far larger than its resampling spread, and the replicates stay six sums."""
        if not self.options.bootstrap:
            return None
        sums = {name: self._boot[:, i] for i, name in enumerate(_BOOT)}
        with np.errstate(divide="ignore", invalid="ignore"):
            counts = sums["n"]
            return {"dm": sums["dm"] / counts, "ips": sums["wr"] / counts + imputed,
                    "snips": supported * (sums["wr"] / sums["w"]) + imputed,
                    "dr": sums["dr"] / counts, "switch-dr": sums["switch-dr"] / counts}


@dataclass(frozen=True)
class TimeBins:
    """Row positions grouped into ``bins`` consecutive slices of the log (reward over time)."""

    n: int
    bins: int

    def of(self, start: int, count: int) -> npt.NDArray[np.int64]:
        positions = np.arange(start, start + count, dtype=np.int64)
        return np.minimum(positions * self.bins // max(self.n, 1), self.bins - 1)


def weight_edges(max_weight: float, bins: int = 40) -> FloatArray:
    """Log-spaced histogram edges from 1e-3 to just above ``max_weight``."""
    upper = max(max_weight, 1.0) * 1.0001
    return np.logspace(-3.0, math.log10(upper), bins + 1)
