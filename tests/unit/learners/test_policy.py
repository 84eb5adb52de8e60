"""The online policy's served decisions after a few outcomes (issue 17, item 5)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from learners.bandit.settings import BanditSettings
from learners.bandit.vw_format import action_namespaces
from learners.context import DecisionContext, Task
from learners.features import describe_context
from learners.policy import LearnEvent, OnlinePolicy
from learners.reward import DEFAULT_PROFILES, Outcome, Verdict, compute_reward
from router.settings import load_settings

CATALOG = load_settings(None, {}).catalog
APPROVED = "small-fast|0|plain"


@pytest.mark.parametrize("approvals", [3, 6])
def test_approved_action_is_the_most_probable_after_a_few_approvals(approvals: int) -> None:
    """On a fresh policy, approvals of one cheap action make it the most probable action in
    that context: no never-tried action (pricier, slower, with a longer prompt) overtakes it.
    (With price, latency and prompt size as numeric action features, three approvals of
    ``small-fast|0|plain`` put it at 0.0012 and a never-tried ``frontier-large`` action at 0.81.)
    """
    task = Task(type="backend", language="python",
                description="Add a REST endpoint that lists users")
    features, record = describe_context(DecisionContext(task=task),
                                        datetime(2026, 1, 1, tzinfo=UTC))
    allowed = list(CATALOG.indices_for_language("python"))
    ids = [CATALOG.actions[i].id for i in allowed]
    position = ids.index(APPROVED)
    reward = compute_reward(Outcome(verdict=Verdict.APPROVED), DEFAULT_PROFILES["balanced"])
    policy = OnlinePolicy(settings=BanditSettings(), catalogs={CATALOG.fingerprint: CATALOG})
    for seq in range(1, approvals + 1):
        probabilities = policy.probabilities(features, CATALOG, allowed, record)
        policy.learn(LearnEvent(
            seq=seq, catalog_fingerprint=CATALOG.fingerprint, features=features,
            allowed=allowed, chosen_position=position, propensity=probabilities[position],
            reward=reward, verdict=Verdict.APPROVED, quality=None, generation_time_s=None,
            prior_time_s=10.0, record=record))
    probabilities = policy.probabilities(features, CATALOG, allowed, record)
    policy.close()
    runner_up = max(p for i, p in enumerate(probabilities) if i != position)
    # 0.32 and 0.49 after 3 and 6 approvals, the runner-up at 0.007 and 0.006: one context
    # repeated carries nothing that varies, so only the action features learn
    # (learners/constant_features.py).
    assert probabilities[position] > 0.3 > 40 * runner_up, (probabilities[position], runner_up)


def test_action_features_are_indicators_only() -> None:
    """Every action feature is a name without a value (VW's value 1): no price, latency,
    temperature or prompt size enters as a magnitude a linear model could extrapolate."""
    for action in CATALOG.actions:
        for namespace in action_namespaces(action, drifting=True):
            for feature in namespace.split()[1:]:
                assert ":" not in feature, (action.id, feature)


def test_a_checkpoint_of_the_previous_state_format_is_refused_and_changes_nothing() -> None:
    """FEATURE_VERSION 8 kept one field per learner (``vw_model``, ``stats``, ...); such a
    checkpoint is refused (the service then folds the event log) and the state is untouched."""
    import msgspec

    from tests.support import TEST_KEYRING

    task = Task(type="backend", language="python", description="Add a REST endpoint")
    features, record = describe_context(DecisionContext(task=task),
                                        datetime(2026, 1, 1, tzinfo=UTC))
    allowed = list(CATALOG.indices_for_language("python"))
    policy = OnlinePolicy(settings=BanditSettings(), catalogs={CATALOG.fingerprint: CATALOG})
    policy.learn(LearnEvent(
        seq=1, catalog_fingerprint=CATALOG.fingerprint, features=features, allowed=allowed,
        chosen_position=0, propensity=0.5, reward=1.0, verdict=Verdict.APPROVED, quality=None,
        generation_time_s=None, prior_time_s=10.0, record=record))
    before = policy.probabilities(features, CATALOG, allowed, record)
    old = TEST_KEYRING.seal(msgspec.msgpack.encode({
        "fingerprint": policy.fingerprint, "vw_model": b"", "stats": b"", "learned": 7}))
    assert not policy.restore(old, TEST_KEYRING)
    assert policy.learned == 1
    assert policy.probabilities(features, CATALOG, allowed, record) == before
    fresh = OnlinePolicy(settings=BanditSettings(), catalogs={CATALOG.fingerprint: CATALOG})
    assert fresh.restore(policy.snapshot(TEST_KEYRING), TEST_KEYRING)
    assert fresh.probabilities(features, CATALOG, allowed, record) == before
    for p in (policy, fresh):
        p.close()
