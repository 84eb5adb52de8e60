"""Online standardisation of numeric caller features (learners/scaling.py)."""

from __future__ import annotations

import math
import pickle

import numpy as np

from learners.scaling import FeatureScaler


def test_numeric_features_are_standardised_by_the_outcomes_seen_so_far() -> None:
    scaler = FeatureScaler()
    values = np.random.default_rng(0).normal(100.0, 5.0, 500)
    for v in values:
        scaler.learn_one({"free": {"size": float(v), "colour=red": 1.0}})
    out = scaler.transform({"free": {"size": 110.0, "colour=red": 1.0}, "task": {"x": 3.0}})
    expected = (110.0 - values.mean()) / values.std()
    assert math.isclose(out["free"]["size"], expected, abs_tol=1e-5)
    assert out["free"]["colour=red"] == 1.0  # categories are indicators, left alone
    assert out["task"] == {"x": 3.0}  # only the caller's free features are scaled


def test_an_absent_numeric_feature_counts_as_zero() -> None:
    scaler = FeatureScaler()
    for v in (2.0, 0.0, 2.0, 0.0):  # extract_features drops zeros: absent means 0 (counted
        # from the outcome that first showed the feature)
        scaler.learn_one({"free": {"n": v}} if v else {"free": {}})
    out = scaler.transform({"free": {}})
    assert math.isclose(out["free"]["n"], -1.0, abs_tol=1e-9)  # mean 1, sd 1


def test_transform_never_mutates_its_input_and_a_fresh_scaler_is_the_identity() -> None:
    features = {"free": {"size": 3.0}}
    assert FeatureScaler().transform(features) is features
    scaler = FeatureScaler()
    for v in (1.0, 5.0):
        scaler.learn_one({"free": {"size": v}})
    before = {"free": {"size": 3.0}}
    scaler.transform(before)
    assert before == {"free": {"size": 3.0}}


def test_names_are_bounded_and_state_round_trips() -> None:
    scaler = FeatureScaler(max_features=8)
    for i in range(100):
        scaler.learn_one({"free": {f"f{i}": 1.0 + i, "g": float(i % 3)}})
    assert len(scaler._moments) == 8
    copy = pickle.loads(pickle.dumps(scaler))
    probe = {"free": {"g": 2.0, "f99": 3.0}}
    assert copy.transform(probe) == scaler.transform(probe)
