"""Drift detection: alarms on real drops (and only on drops), their adaptation period, the
re-learning flag in the action lines, and state that survives a snapshot."""

from __future__ import annotations

import numpy as np

from learners.bandit.settings import BanditSettings
from learners.catalog import Catalog
from learners.drift import BanditDriftSettings, DriftAlarm, DriftMonitor, DriftObservation
from learners.features import ContextFeatures
from learners.policy import LearnEvent, OnlinePolicy
from learners.reward import Verdict
from router.settings import load_settings
from tests.support import TEST_KEYRING


def update(monitor: DriftMonitor, model: str, success: float,
           predicted: float | None) -> list[DriftAlarm]:
    """Fold one outcome into ``monitor``; the alarms it raised."""
    before = len(monitor.history)
    monitor.learn_one(DriftObservation(model=model, success=success, predicted=predicted))
    return monitor.history[before:]


def feed(monitor: DriftMonitor, rates: list[tuple[int, float]], seed: int = 0,
         model: str = "m") -> list[int]:
    """Bernoulli outcomes at each (count, rate); the outcome numbers where alarms fired."""
    rng = np.random.default_rng(seed)
    fired = []
    for count, rate in rates:
        for _ in range(count):
            if update(monitor, model, float(rng.random() < rate), None):
                fired.append(monitor.observed)
    return fired


def test_a_success_drop_raises_one_alarm_soon_after_it() -> None:
    monitor = DriftMonitor(BanditDriftSettings(hold=10_000))
    fired = feed(monitor, [(1500, 0.7), (1500, 0.35)])
    assert fired, "no alarm after the success rate halved"
    assert 1500 < fired[0] <= 1800
    alarm = monitor.history[0]
    assert alarm.model == "m"
    assert alarm.stream == "success"
    assert alarm.before > alarm.after + 0.05
    assert monitor.alarmed_models() == frozenset({"m"})


def test_stationary_outcomes_and_rises_raise_no_success_alarm() -> None:
    for seed in range(3):
        assert feed(DriftMonitor(), [(5000, 0.6)], seed=seed) == []
    assert feed(DriftMonitor(), [(1500, 0.3), (1500, 0.8)]) == []  # better is not an alarm


def test_an_alarm_clears_after_its_hold_period_of_the_models_outcomes() -> None:
    monitor = DriftMonitor(BanditDriftSettings(hold=3))
    rng = np.random.default_rng(0)
    for i in range(3000):  # stop at the first alarm
        if update(monitor, "m", float(rng.random() < (0.7 if i < 1500 else 0.2)), None):
            break
    assert [a.remaining for a in monitor.active] == [3]
    update(monitor, "other", 1.0, None)  # another model's outcome does not age it
    update(monitor, "m", 0.0, None)
    update(monitor, "m", 0.0, None)
    assert [a.remaining for a in monitor.active] == [1]
    assert monitor.alarmed_models() == frozenset({"m"})
    update(monitor, "m", 0.0, None)
    assert monitor.active == []
    assert monitor.alarmed_models() == frozenset()
    assert len(monitor.history) == 1


def test_residual_alarm_when_outcomes_fall_below_predictions() -> None:
    monitor = DriftMonitor()
    rng = np.random.default_rng(1)
    raised = []
    for i in range(3000):
        rate = 0.8 if i < 1500 else 0.4
        raised += update(monitor, "m", float(rng.random() < rate), 0.8)
    residual = [a for a in raised if a.stream == "residual"]
    assert residual
    assert residual[0].before > residual[0].after + 0.05
    assert 1500 < residual[0].detected_at <= 1800


def _event(catalog: Catalog, seq: int, position: int, verdict: Verdict) -> LearnEvent:
    features = ContextFeatures(namespaces={"task": {"type=backend": 1.0}}, complexity=5.0)
    allowed = list(range(len(catalog.actions)))
    return LearnEvent(seq=seq, catalog_fingerprint=catalog.fingerprint, features=features,
                      allowed=allowed, chosen_position=position, propensity=0.5,
                      reward=1.0 if verdict is Verdict.APPROVED else 0.0, verdict=verdict,
                      quality=None, generation_time_s=None, prior_time_s=10.0)


def test_the_policy_flags_a_drifting_models_actions_and_snapshots_the_detectors() -> None:
    catalog = load_settings("configs/default.toml", {}).catalog
    settings = BanditDriftSettings(hold=10_000)
    policy = OnlinePolicy(settings=BanditSettings(), catalogs={catalog.fingerprint: catalog},
                          drift=settings)
    model = catalog.actions[0].model.name
    rng = np.random.default_rng(3)
    for seq, rate in enumerate([0.8] * 1200 + [0.1] * 600, start=1):
        verdict = Verdict.APPROVED if rng.random() < rate else Verdict.REJECTED
        policy.learn(_event(catalog, seq, 0, verdict))
    assert model in {alarm.model for alarm in policy.active_alarms}
    lines = policy._lines[catalog.fingerprint]
    flagged = [line for line in lines.lines if "drift_alarm" in line]
    assert flagged
    assert all(f"m={model}" in line for line in flagged)
    assert len(flagged) == sum(a.model.name == model for a in catalog.actions)
    restored = OnlinePolicy(settings=BanditSettings(), catalogs={catalog.fingerprint: catalog},
                            drift=settings)
    assert restored.restore(policy.snapshot(TEST_KEYRING), TEST_KEYRING)
    assert restored.active_alarms == policy.active_alarms
    assert restored._lines[catalog.fingerprint].lines == lines.lines
    other = OnlinePolicy(settings=BanditSettings(), catalogs={catalog.fingerprint: catalog},
                         drift=BanditDriftSettings(delta=0.001))
    assert other.fingerprint != policy.fingerprint  # detector settings are part of the state
    for p in (policy, restored, other):
        p.close()
