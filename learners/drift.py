"""Drift detection on the outcome stream (River ADWIN), folded with the online policy.

Two detectors per model, both updated on every outcome of a decision that chose the model:

- **success**: the approval indicator (approved = 1, modified = 0.5, rejected = 0). A detection
  whose new window mean is lower than the mean before it raises a *success dropped* alarm;
- **residual**: the outcome minus the success the online statistics predicted for the chosen
  action just before it (per action, so a shift of the policy towards other contexts or actions
  does not look like drift). A detection with a lower new mean raises an *outcomes fell below
  predictions* alarm; it usually fires first, because it compares like with like.

ADWIN keeps the longest recent window whose mean is consistent, so it needs no window size;
``delta`` is its confidence parameter (smaller = fewer false alarms, slower detection; the
default 0.02 is measured in configs/default.toml). An alarm
stays active for ``hold`` further outcomes of its model (the adaptation period: the policy gives
the model's actions a fresh VW feature so the bandit can re-learn them quickly), then clears.
Like the rest of the policy state this is a deterministic fold over the ordered outcomes.
"""

from __future__ import annotations

import pickle
from typing import Annotated, Literal

import msgspec
from msgspec import Meta
from river import drift

from learners.protocol import SnapshotError

Stream = Literal["success", "residual"]


class BanditDriftSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Config section ``[drift]``."""

    enabled: bool = True
    delta: Annotated[float, Meta(gt=0.0, lt=1.0)] = 0.02
    hold: Annotated[int, Meta(ge=1)] = 500
    # A detection that lowers the stream's mean by less than this is not an alarm.
    min_change: Annotated[float, Meta(ge=0.0, le=1.0)] = 0.05
    retrain_on_alarm: bool = False


class DriftAlarm(msgspec.Struct, frozen=True):
    """One detected change of a model's outcome stream."""

    model: str
    stream: Stream
    detected_at: int  # the policy's outcome count when it fired
    before: float
    after: float
    remaining: int  # outcomes of this model until the alarm clears

    @property
    def description(self) -> str:
        what = ("success rate dropped" if self.stream == "success"
                else "outcomes fell below predictions")
        return f"{self.model}: {what} from {self.before:.3f} to {self.after:.3f}"


class DriftObservation(msgspec.Struct, frozen=True):
    """One outcome of ``model``: its success (approved 1, modified 0.5, rejected 0) and the
    success the outcome statistics predicted for the chosen action (None before any)."""

    model: str
    success: float
    predicted: float | None


class _ModelDetectors:
    def __init__(self, delta: float) -> None:
        self.success = drift.ADWIN(delta=delta)  # type: ignore[no-untyped-call]
        self.residual = drift.ADWIN(delta=delta)  # type: ignore[no-untyped-call]


class DriftMonitor:
    """Per-model ADWIN detectors and the alarms they raised."""

    def __init__(self, settings: BanditDriftSettings | None = None) -> None:
        self.settings = settings or BanditDriftSettings()
        self._models: dict[str, _ModelDetectors] = {}
        self._alarms: dict[tuple[str, Stream], DriftAlarm] = {}
        self.history: list[DriftAlarm] = []  # every alarm raised, oldest first
        self.observed = 0

    def learn_one(self, event: DriftObservation) -> None:
        """Fold in one outcome; the alarms it raises join :attr:`history`."""
        self.observed += 1
        if not self.settings.enabled:
            return
        model, success = event.model, event.success
        detectors = self._models.get(model)
        if detectors is None:
            detectors = self._models[model] = _ModelDetectors(self.settings.delta)
        self._age(model)
        self._feed(model, "success", detectors.success, success)
        if event.predicted is not None:
            self._feed(model, "residual", detectors.residual, success - event.predicted)

    def predict_one(self, model: str) -> list[DriftAlarm]:
        """The active alarms of ``model``, by stream."""
        return [self._alarms[k] for k in sorted(self._alarms) if k[0] == model]

    def snapshot(self) -> bytes:
        """The detectors and alarms pickled (River's ADWIN has no other format)."""
        return pickle.dumps((self._models, self._alarms, self.history, self.observed),
                            protocol=pickle.HIGHEST_PROTOCOL)

    def restore(self, data: bytes) -> None:
        """Load a :meth:`snapshot`; ``data`` must be authenticated (learners.protocol)."""
        try:
            models, alarms, history, observed = pickle.loads(data)
        except Exception as exc:
            raise SnapshotError(f"not a drift monitor snapshot: {exc}") from exc
        if not (isinstance(models, dict) and isinstance(alarms, dict)
                and isinstance(history, list) and isinstance(observed, int)):
            raise SnapshotError("not a drift monitor snapshot")
        self._models, self._alarms, self.history, self.observed = (
            models, alarms, history, observed)

    def _feed(self, model: str, stream: Stream, detector: drift.ADWIN,
              value: float) -> None:
        width, mean = float(detector.width), float(detector.estimation)
        detector.update(value)  # type: ignore[no-untyped-call]
        if not detector.drift_detected:
            return
        # ADWIN dropped the window's older part: compare that part's mean with the mean of
        # what it kept (the mean of the whole old window would blur the change by the kept
        # part, which the policy may already have moved away from).
        kept, after = float(detector.width), float(detector.estimation)
        dropped = width + 1.0 - kept
        before = (width * mean + value - kept * after) / dropped if dropped > 0 else mean
        if before - after < self.settings.min_change:  # only falls are alarms
            return
        alarm = DriftAlarm(model=model, stream=stream, detected_at=self.observed,
                           before=before, after=after, remaining=self.settings.hold)
        self._alarms[(model, stream)] = alarm
        self.history.append(alarm)

    def _age(self, model: str) -> None:
        for key in [k for k in self._alarms if k[0] == model]:
            alarm = self._alarms[key]
            if alarm.remaining <= 1:
                del self._alarms[key]
            else:
                self._alarms[key] = msgspec.structs.replace(alarm, remaining=alarm.remaining - 1)

    @property
    def active(self) -> list[DriftAlarm]:
        """Alarms still in their adaptation period, by model then stream."""
        return [self._alarms[k] for k in sorted(self._alarms)]

    def alarmed_models(self) -> frozenset[str]:
        """Models with an active alarm (the ones whose actions the bandit re-learns)."""
        return frozenset(m for m, _ in self._alarms)
