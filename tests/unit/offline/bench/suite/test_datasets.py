"""Classification sets as suite environments: shapes, seeded streams, rewards, skyline."""

from __future__ import annotations

import re
from itertools import islice

import msgspec
import numpy as np
import pytest
from sklearn import datasets as sklearn_datasets

from learners.context import MAX_FEATURES, Task
from offline.bench.suite.datasets import (
    STEPS,
    ClassificationEnvironment,
    environments,
    feature_name,
)

FEATURE_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


@pytest.fixture(scope="module")
def envs() -> dict[str, ClassificationEnvironment]:
    built = environments()
    envs = {env.name: env for env in built if isinstance(env, ClassificationEnvironment)}
    assert len(envs) == len(built)
    return envs


def test_the_sets_differ_in_size_and_feature_kinds(
    envs: dict[str, ClassificationEnvironment],
) -> None:
    sizes = {len(env.catalog) for env in envs.values()}
    assert len(envs) >= 5
    assert min(sizes) == 2
    assert max(sizes) >= 5
    assert len(sizes) >= 3
    assert any(env.source.categorical for env in envs.values())
    assert any(env.source.numeric and not env.source.categorical for env in envs.values())
    assert all(name.startswith("cls-") for name in envs)
    assert {"cls-digits", "cls-image-segments", "cls-segment"}.isdisjoint(envs)


def test_every_step_is_a_valid_request_with_a_one_hot_reward(
    envs: dict[str, ClassificationEnvironment],
) -> None:
    for env in envs.values():
        assert env.kind == "classification"
        catalog = env.catalog
        assert [a.model.name for a in catalog.actions] == [
            f"class-{label}" for label in env.source.labels]
        assert len({(m.input_price_per_mtok, m.output_price_per_mtok, m.typical_latency_s)
                    for m in catalog.models}) == 1
        assert len(catalog.temperatures) == 1
        assert len(catalog.templates) == 1
        steps = list(env.steps(0))
        assert len(steps) == STEPS
        assert [s.index for s in steps] == list(range(STEPS))
        first = steps[0].context.task
        msgspec.convert(msgspec.to_builtins(first), Task)  # within the request limits
        for step in steps:
            assert step.context.task == first  # constant task fields
            features = step.context.features
            assert 0 < len(features) <= MAX_FEATURES
            assert all(FEATURE_NAME.match(name) and len(name) <= 64 for name in features)
            assert all(isinstance(v, float | str) for v in features.values())
            assert step.expected.shape == (len(catalog),)
            assert sorted(step.expected.tolist()) == [0.0] * (len(catalog) - 1) + [1.0]


def test_the_rewarded_action_is_the_true_label() -> None:
    """Against the source table: the step's features identify the iris row, and the reward is
    1 exactly for that row's species."""
    env = next(e for e in environments() if e.name == "cls-iris")
    assert isinstance(env, ClassificationEnvironment)
    iris = sklearn_datasets.load_iris()
    truth = {tuple(row): int(label) for row, label in zip(iris.data.tolist(), iris.target,
                                                             strict=True)}
    rng = np.random.default_rng(0)
    for step in islice(env.steps(3), 300):
        label = truth[tuple(step.context.features.values())]
        rewards = [env.reward(step, a, rng) for a in range(len(env.catalog))]
        assert rewards == [float(a == label) for a in range(len(env.catalog))]
        assert env.catalog.actions[label].model.name == f"class-{iris.target_names[label]}"


def test_a_seed_gives_the_same_stream_and_seeds_differ(
    envs: dict[str, ClassificationEnvironment],
) -> None:
    for env in (envs["cls-wine"], envs["cls-agrawal"], envs["cls-led"]):
        first = [(s.context.features, s.expected.tolist()) for s in islice(env.steps(1), 200)]
        again = [(s.context.features, s.expected.tolist()) for s in islice(env.steps(1), 200)]
        other = [(s.context.features, s.expected.tolist()) for s in islice(env.steps(2), 200)]
        assert first == again
        assert first != other


def test_a_small_set_is_cycled_in_shuffled_passes(
    envs: dict[str, ClassificationEnvironment],
) -> None:
    steps = [tuple(s.context.features.values()) for s in envs["cls-iris"].steps(0)]
    n = len(sklearn_datasets.load_iris().data)
    first, second = steps[:n], steps[n:2 * n]
    assert len(set(first)) == len(set(second)) == len(set(steps)) >= n - 2  # 1 duplicate row
    assert sorted(first) == sorted(second)
    assert first != second


def test_the_skyline_learns_clearly_beyond_uniform_and_is_seeded(
    envs: dict[str, ClassificationEnvironment],
) -> None:
    wine = envs["cls-wine"]
    column_means = np.mean([s.expected for s in wine.steps(0)], axis=0)
    skyline = wine.skyline(0)
    assert skyline > column_means.max() + 0.4  # best fixed 0.40; the learner ~0.98
    assert ClassificationEnvironment(wine.source).skyline(0) == skyline


def test_feature_names_are_made_valid() -> None:
    assert feature_name("mean radius") == "mean_radius"
    assert feature_name("od280/od315_of_diluted_wines") == "od280_od315_of_diluted_wines"
    assert feature_name("sepal length (cm)") == "sepal_length_cm"
    with pytest.raises(ValueError, match="no usable character"):
        feature_name(" / ")
