"""Online standardisation of numeric caller features (learners/scaling.py)."""

from __future__ import annotations

import math

import msgspec
import numpy as np

from learners.scaling import WARMUP, FeatureScaler


def test_numeric_features_are_standardised_by_their_first_outcomes_then_fixed() -> None:
    scaler = FeatureScaler()
    values = np.random.default_rng(0).normal(100.0, 5.0, 500)
    probe = {"free": {"size": 110.0, "colour=red": 1.0}, "task": {"x": 3.0}}
    for v in values[:WARMUP]:
        scaler.learn_one({"free": {"size": float(v), "colour=red": 1.0}})
    out = scaler.predict_one(probe)
    first = values[:WARMUP]
    assert math.isclose(out["free"]["size"], (110.0 - first.mean()) / first.std(), abs_tol=1e-5)
    for v in values[WARMUP:]:  # later outcomes no longer move how a context is represented
        scaler.learn_one({"free": {"size": float(v) + 50.0}})
    assert scaler.predict_one(probe) == out
    assert out["free"]["colour=red"] == 1.0  # categories are indicators, left alone
    assert out["task"] == {"x": 3.0}  # only the caller's free features are scaled


def test_an_absent_numeric_feature_counts_as_zero() -> None:
    scaler = FeatureScaler()
    for v in (2.0, 0.0, 2.0, 0.0):  # extract_features drops zeros: absent means 0 (counted
        # from the outcome that first showed the feature)
        scaler.learn_one({"free": {"n": v}} if v else {"free": {}})
    out = scaler.predict_one({"free": {}})
    assert math.isclose(out["free"]["n"], -1.0, abs_tol=1e-9)  # mean 1, sd 1


def test_a_feature_without_variance_yet_is_only_centred() -> None:
    scaler = FeatureScaler()
    scaler.learn_one({"free": {"n": 7.0}})
    assert scaler.predict_one({"free": {"n": 9.0}}) == {"free": {"n": 2.0}}


def test_scaling_never_mutates_its_input_and_a_fresh_scaler_is_the_identity() -> None:
    features = {"free": {"size": 3.0}}
    assert FeatureScaler().predict_one(features) is features
    scaler = FeatureScaler()
    for v in (1.0, 5.0):
        scaler.learn_one({"free": {"size": v}})
    before = {"free": {"size": 3.0}}
    scaler.predict_one(before)
    assert before == {"free": {"size": 3.0}}


def test_names_are_bounded_and_state_round_trips() -> None:
    scaler = FeatureScaler(max_features=8)
    for i in range(100):
        scaler.learn_one({"free": {f"f{i}": 1.0 + i, "g": float(i % 3)}})
    assert len(scaler._moments) == 8
    copy = FeatureScaler(max_features=8)
    copy.restore(scaler.snapshot())
    probe = {"free": {"g": 2.0, "f99": 3.0}}
    assert copy.predict_one(probe) == scaler.predict_one(probe)


def test_the_policy_checkpoints_its_scaler_and_learns_better_with_it() -> None:
    from learners.bandit.settings import BanditSettings
    from learners.context import DecisionContext, Task
    from learners.features import extract_features
    from learners.policy import LearnEvent, OnlinePolicy
    from learners.reward import Verdict
    from router.settings import load_settings
    from tests.support import TEST_KEYRING

    catalog = load_settings("configs/default.toml", {}).catalog
    # Two actions of different models (the free features cross the model namespace).
    first, second = (next(a.index for a in catalog.actions if a.model.name == m.name)
                     for m in catalog.models[:2])
    allowed = [first, second]

    def features(size: float) -> object:
        return extract_features(DecisionContext(
            task=Task(type="backend", language="python", description="Add an endpoint"),
            features={"size": size}))

    settings = BanditSettings()
    policy = OnlinePolicy(settings=settings, catalogs={catalog.fingerprint: catalog})
    rng = np.random.default_rng(1)
    for seq in range(1, 201):
        size = float(rng.normal(500.0, 20.0))
        good = 0 if size > 500.0 else 1  # which action is right depends on the number
        chosen = int(rng.integers(2))
        reward = 1.0 if chosen == good else 0.0
        policy.learn(LearnEvent(
            seq=seq, catalog_fingerprint=catalog.fingerprint, features=features(size),
            allowed=allowed, chosen_position=chosen, propensity=0.5, reward=reward,
            verdict=Verdict.APPROVED if reward else Verdict.REJECTED, quality=None,
            generation_time_s=None, prior_time_s=10.0))
    probe = features(540.0)
    restored = OnlinePolicy(settings=settings, catalogs={catalog.fingerprint: catalog})
    assert restored.restore(policy.snapshot(TEST_KEYRING), TEST_KEYRING)
    assert restored.probabilities(probe, catalog, allowed) == policy.probabilities(
        probe, catalog, allowed)
    raw = OnlinePolicy(settings=msgspec.structs.replace(settings, standardise_features=False),
                       catalogs={catalog.fingerprint: catalog})
    assert not raw.restore(policy.snapshot(TEST_KEYRING), TEST_KEYRING)  # another learner
    # Standardised, the size decides: a large size favours action 0, a small one action 1.
    large = policy.probabilities(features(540.0), catalog, allowed)
    small = policy.probabilities(features(460.0), catalog, allowed)
    assert large[0] > large[1]
    assert small[1] > small[0]
    for p in (policy, restored, raw):
        p.close()
