"""The non-contextual action prior blended into the bandit's rewards (``[bandit] prior``)."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import numpy as np
import pytest

from learners.bandit.action_prior import ActionPrior, PriorMode, PriorState
from learners.bandit.vw_bandit import BanditSettings
from learners.context import DecisionContext, Task
from learners.features import describe_context
from learners.policy import LearnEvent, OnlinePolicy
from learners.reward import Verdict
from router.settings import load_settings
from tests.support import TEST_KEYRING

CATALOG = load_settings(None, {}).catalog


def _prior(mode: PriorMode, *, count: float = 0.0, horizon: float = 0.0) -> ActionPrior:
    return ActionPrior(mode=mode, count=count, horizon=horizon, eta=0.5)


def test_residual_mode_adds_each_actions_shrunk_mean_residual() -> None:
    prior = _prior("residual", count=2.0)
    rows = prior.rows(["a", "b"])
    for reward in (1.0, 1.0):  # the regression predicted 0.4 twice; "a" was approved twice
        prior.learn_one(int(rows[0]), reward, 0.4)
    blended = prior.blend(rows, np.array([0.4, 0.4]))
    # mean residual 0.6 shrunk by 2 / (2 + 2); "b" was never tried: unchanged
    np.testing.assert_allclose(blended, [0.4 + 0.3, 0.4])


def test_mixture_leans_on_the_per_action_means_when_they_predict_better() -> None:
    prior = _prior("mixture")
    rows = prior.rows(["good", "bad"])
    rng = np.random.default_rng(0)
    for _ in range(200):  # the regression predicts 0.5 for both; the means know better
        row = int(rng.integers(2))
        prior.learn_one(row, float(rng.random() < (0.9 if row == 0 else 0.1)), 0.5)
    blended = prior.blend(rows, np.array([0.5, 0.5]))
    assert blended[0] > 0.85, blended
    assert blended[1] < 0.15, blended


def test_mixture_fades_to_the_regression_when_the_context_explains_the_reward() -> None:
    prior = _prior("mixture")
    rows = prior.rows(["x", "y"])
    rng = np.random.default_rng(1)
    for _ in range(200):  # each reward is what the regression predicted; means are ~0.5
        row = int(rng.integers(2))
        reward = float(rng.random() < 0.5)
        prior.learn_one(row, reward, reward)
    predicted = np.array([1.0, 0.0])
    np.testing.assert_allclose(prior.blend(rows, predicted), predicted, atol=1e-6)


def test_mixture_vw_keeps_the_regressions_score_of_a_never_tried_action() -> None:
    overall, own = _prior("mixture", count=5.0), _prior("mixture_vw", count=5.0)
    predicted = np.array([0.5, 0.2])
    blends = []
    for prior in (overall, own):
        rows = prior.rows(["tried", "never"])
        for _ in range(100):  # the regression keeps predicting 0.5; "tried" is always approved
            prior.learn_one(int(rows[0]), 1.0, 0.5)
        blends.append(prior.blend(rows, predicted))
    assert blends[1][1] == pytest.approx(0.2)  # own centre: the regression's 0.2 stands
    assert blends[0][1] > 0.5  # overall centre: lifted by the other action's approvals
    assert blends[1][0] > 0.9


def test_a_horizon_forgets_what_came_before_a_change() -> None:
    remembers, forgets = _prior("mixture", count=1.0), _prior("mixture", count=1.0, horizon=50.0)
    for prior in (remembers, forgets):
        row = int(prior.rows(["a"])[0])
        for reward in [1.0] * 1000 + [0.0] * 200:  # the action collapsed 200 outcomes ago
            prior.learn_one(row, reward, 0.5)
    rows = np.array([0], dtype=np.intp)
    assert remembers._means(rows)[0] > 0.8
    assert forgets._means(rows)[0] < 0.05


def test_off_leaves_the_predictions_alone_and_state_round_trips() -> None:
    prior = _prior("mixture", count=3.0, horizon=100.0)
    rows = prior.rows(["a", "b", "c"])
    for i in range(30):
        prior.learn_one(i % 3, float(i % 2), 0.3)
    copy = _prior("mixture", count=3.0, horizon=100.0)
    copy.load(msgspec.msgpack.decode(msgspec.msgpack.encode(prior.state()), type=PriorState))
    predicted = np.array([0.2, 0.5, 0.9])
    np.testing.assert_array_equal(copy.blend(copy.rows(["a", "b", "c"]), predicted),
                                  prior.blend(rows, predicted))
    assert _prior("off").blend(rows, predicted) is predicted


def _learn_often(policy: OnlinePolicy, position: int, reward: float, times: int) -> None:
    task = Task(type="backend", language="python", description="Add a REST endpoint")
    features, record = describe_context(DecisionContext(task=task),
                                        datetime(2026, 1, 1, tzinfo=UTC))
    allowed = list(CATALOG.indices_for_language("python"))
    for seq in range(1, times + 1):
        policy.learn(LearnEvent(
            seq=seq, catalog_fingerprint=CATALOG.fingerprint, features=features,
            allowed=allowed, chosen_position=position, propensity=0.5, reward=reward,
            verdict=Verdict.APPROVED if reward >= 0.5 else Verdict.REJECTED, quality=None,
            generation_time_s=None, prior_time_s=10.0, record=record))


def test_the_policys_prior_changes_its_probabilities_and_survives_a_snapshot() -> None:
    settings = BanditSettings(prior="mixture", prior_count=1.0)
    plain = OnlinePolicy(settings=BanditSettings(), catalogs={CATALOG.fingerprint: CATALOG})
    policy = OnlinePolicy(settings=settings, catalogs={CATALOG.fingerprint: CATALOG})
    assert policy.fingerprint != plain.fingerprint
    for p in (plain, policy):
        _learn_often(p, 0, 1.0, 20)
    task = Task(type="frontend", language="python", description="Fix the login form")
    features, record = describe_context(DecisionContext(task=task),
                                        datetime(2026, 1, 2, tzinfo=UTC))
    allowed = list(CATALOG.indices_for_language("python"))
    with_prior = policy.probabilities(features, CATALOG, allowed, record)
    assert with_prior != plain.probabilities(features, CATALOG, allowed, record)
    restored = OnlinePolicy(settings=settings, catalogs={CATALOG.fingerprint: CATALOG})
    assert restored.restore(policy.snapshot(TEST_KEYRING), TEST_KEYRING)
    assert restored.probabilities(features, CATALOG, allowed, record) == with_prior
    assert not plain.restore(policy.snapshot(TEST_KEYRING), TEST_KEYRING)
    for p in (plain, policy, restored):
        p.close()


def test_a_prior_needs_squarecb() -> None:
    with pytest.raises(ValueError, match="prior needs exploration 'squarecb'"):
        BanditSettings(exploration="epsilon", prior="residual")
