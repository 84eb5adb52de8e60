"""Online standardisation of the caller's numeric features before the bandit sees them.

A linear learner fed raw numeric features learns slowly when they are far from zero and
narrow (a length of 5.8 ± 0.4 cm): most of each update goes into the offset. VW's normalised
updates correct the scale but not the offset, so on classification sets turned into bandit
feedback the bandit stayed near chance where the same learner on standardised features did
not (docs/learning.md, "Numeric features").

:class:`FeatureScaler` keeps, per numeric feature of the ``free`` namespace (the request's
``features`` entries that are not categories, as :func:`learners.features.extract_features`
names them), the mean and variance over the first ``WARMUP`` outcomes learned since the feature
first appeared, an absent feature counting as 0 (extract_features drops zeros); from then on the
feature's transformation is fixed. :meth:`FeatureScaler.predict_one` replaces each such feature by
``(value - mean) / sd`` (only ``value - mean`` while there is no variance yet), absent ones
included once they have been seen. It is part of the learner state, a fold over outcomes like
the bandit.

Why fixed after a warm-up: a transformation that kept moving would change how every context is
represented at every outcome, so an approval could lower the approved action's probability in
its own context through the shift of the context's features alone (tests/property/
test_approval_monotonicity.py). On the suite's classification sets the first 30 outcomes
estimate the scale about as well as all of them.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import msgspec

from learners.context import MAX_FEATURES
from learners.features import Namespaces
from learners.protocol import SnapshotError

FREE = "free"
WARMUP = 30  # outcomes whose values fix a feature's mean and sd
MIN_OBSERVATIONS = 2  # before this many, a feature is only centred (no variance yet)


class ScalerState(msgspec.Struct, frozen=True, array_like=True):
    """A :class:`FeatureScaler`'s learned state, as checkpoints hold it (msgpack, no pickle)."""

    max_features: int
    count: int
    moments: list[tuple[str, int, float, float]]  # name, first outcome, sum, sum of squares


class FeatureScaler:
    """Mean and variance of each numeric ``free`` feature over its first ``WARMUP`` outcomes
    (at most ``max_features`` names: the most recently seen)."""

    def __init__(self, *, max_features: int = MAX_FEATURES) -> None:
        self.max_features = max_features
        self._count = 0  # outcomes learned
        # name -> (outcome count when first seen, sum, sum of squares) since first seen
        self._moments: OrderedDict[str, tuple[int, float, float]] = OrderedDict()
        self._scales: dict[str, tuple[float, float]] | None = {}

    def learn_one(self, namespaces: Namespaces) -> None:
        """Fold in the features of one learned outcome."""
        self._count += 1
        self._scales = None
        free = namespaces.get(FREE, {})
        moments = self._moments
        # By name, not as the caller ordered them: which names are forgotten beyond
        # ``max_features`` must not depend on the order of a request's features.
        for name, value in sorted(free.items()):
            if "=" in name:
                continue  # a category indicator
            first, total, squares = moments.get(name, (self._count, 0.0, 0.0))
            if self._count - first < WARMUP:
                moments[name] = (first, total + value, squares + value * value)
            moments.move_to_end(name)
        while len(moments) > self.max_features:
            moments.popitem(last=False)

    def predict_one(self, namespaces: Namespaces) -> Namespaces:
        """``namespaces`` with the ``free`` numeric features standardised (a new dict; the
        input is not changed)."""
        scales = self._current()
        if not scales:
            return namespaces
        free = namespaces.get(FREE, {})
        scaled = {name: value for name, value in free.items() if name not in scales}
        for name, (mean, sd) in scales.items():
            value = round((free.get(name, 0.0) - mean) / sd, 6)
            if value != 0.0:
                scaled[name] = value
        out = dict(namespaces)
        out[FREE] = scaled
        return out

    def snapshot(self) -> bytes:
        """The learned moments as msgpack (:class:`ScalerState`)."""
        return msgspec.msgpack.encode(ScalerState(
            max_features=self.max_features, count=self._count,
            moments=[(name, *m) for name, m in self._moments.items()]))

    def restore(self, data: bytes) -> None:
        try:
            state = msgspec.msgpack.decode(data, type=ScalerState)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise SnapshotError(f"not a feature scaler snapshot: {exc}") from exc
        if state.max_features != self.max_features:
            raise SnapshotError(f"a snapshot of {state.max_features} features, not "
                                f"{self.max_features}")
        self._count = state.count
        self._moments = OrderedDict((name, (first, total, squares))
                                    for name, first, total, squares in state.moments)
        self._scales = None

    def _current(self) -> dict[str, tuple[float, float]]:
        """(mean, sd) of every feature seen (sd 1 while it has no variance)."""
        if self._scales is None:
            scales = {}
            for name, (first, total, squares) in self._moments.items():
                n = min(self._count - first + 1, WARMUP)
                mean = total / n
                variance = squares / n - mean * mean
                sd = math.sqrt(variance) if n >= MIN_OBSERVATIONS and variance > 1e-12 else 1.0
                scales[name] = (mean, sd)
            self._scales = scales
        return self._scales
