from __future__ import annotations

import random

import pytest

from learners.bandit.sampling import draw_index, normalize, seed_from_id
from learners.bandit.vw_bandit import (
    ActionLines,
    BanditSettings,
    UpdateRule,
    VWBandit,
    vw_arguments,
)
from learners.bandit.vw_format import format_label, format_shared
from learners.catalog import Catalog, ModelSpec, TemplateSpec

SHARED = format_shared({"task": {"type=backend": 1.0, "complexity": 0.4}})
CATALOG = Catalog(
    models=[
        ModelSpec(
            name=f"model{i}",
            input_price_per_mtok=i,
            output_price_per_mtok=i,
            typical_latency_s=1 + i,
        )
        for i in range(6)
    ],
    templates=[TemplateSpec(name="plain")],
    temperatures=[0.2],
)
TABLE = ActionLines(CATALOG)
LINES = list(TABLE.lines)
ALL = list(range(len(LINES)))


def test_draws_are_reproducible_and_follow_the_distribution() -> None:
    probabilities = normalize([0.1, 0.0, 0.6, 0.3])
    seed = seed_from_id("decision-1")
    assert draw_index(probabilities, seed) == draw_index(probabilities, seed)
    counts = [0, 0, 0, 0]
    for i in range(20_000):
        counts[draw_index(probabilities, seed_from_id(f"d{i}"))] += 1
    assert counts[1] == 0
    assert counts[2] / 20_000 == pytest.approx(0.6, abs=0.02)


def _draw_by_scan(probabilities: list[float], seed: int) -> int:
    """The first implementation of draw_index: logged decisions were drawn with it."""
    u = random.Random(seed).random()
    cumulative = 0.0
    last_positive = 0
    for index, p in enumerate(probabilities):
        if p > 0.0:
            last_positive = index
            cumulative += p
            if u < cumulative:
                return index
    return last_positive


def test_draws_match_the_logged_draws_of_earlier_versions() -> None:
    # Replaying a logged decision must pick the same action whatever version drew it.
    rng = random.Random(3)
    for case in range(2000):
        size = rng.randint(1, 200)
        raw = [rng.random() if rng.random() < 0.7 else 0.0 for _ in range(size)]
        raw[rng.randrange(size)] = 0.5
        probabilities = normalize(raw)
        seed = seed_from_id(f"case-{case}")
        assert draw_index(probabilities, seed) == _draw_by_scan(probabilities, seed)
    # A total rounded below u still draws the last action with a positive probability.
    assert draw_index([0.0, 1e-9, 0.0], seed_from_id("x")) == 1


def test_normalize_zeroes_negative_and_nan_entries() -> None:
    assert normalize([float("nan"), -1.0, 2.0, 2.0]) == [0.0, 0.0, 0.5, 0.5]


def test_normalize_rejects_an_empty_or_zero_vector() -> None:
    with pytest.raises(ValueError, match="positive entry"):
        normalize([0.0, 0.0])


def test_label_is_cost_equal_to_minus_reward() -> None:
    assert format_label(0.75, 0.5) == "0:-0.750000:0.5"
    assert format_label(2.8e-129, 1e-300) == "0:-0.000000:1e-06"


def test_shared_line_is_independent_of_feature_order() -> None:
    a = format_shared({"task": {"b": 1.0, "a": 0.5}, "caller": {"x": 1.0}})
    b = format_shared({"caller": {"x": 1.0}, "task": {"a": 0.5, "b": 1.0}})
    assert a == b == "shared |C x |T a:0.500000 b"


@pytest.mark.parametrize("exploration", ["epsilon", "squarecb", "cover", "bag", "softmax"])
def test_every_exploration_learns_the_rewarded_action(exploration: str) -> None:
    bandit = VWBandit(settings=BanditSettings(exploration=exploration, epsilon=0.1))  # type: ignore[arg-type]
    assert exploration in vw_arguments(bandit.settings)
    for _ in range(60):
        for chosen in range(len(LINES)):
            bandit.learn(SHARED, LINES, chosen, 1.0 if chosen == 3 else 0.0, 1 / len(LINES))
    probabilities = bandit.probabilities(SHARED, TABLE, ALL)
    assert sum(probabilities) == pytest.approx(1.0)
    assert max(range(len(LINES)), key=probabilities.__getitem__) == 3
    bandit.close()


TWO = ActionLines(
    Catalog(
        models=[
            ModelSpec(name=name, input_price_per_mtok=1, output_price_per_mtok=1,
                      typical_latency_s=1)
            for name in ("strong", "weak")
        ],
        templates=[TemplateSpec(name="plain")],
        temperatures=[0.2],
    )
)


def _two_actions_online(settings: BanditSettings, steps: int) -> tuple[int, list[float]]:
    """Rewards 0.9 (strong) and 0.2 (weak); the bandit draws and learns its own choices with
    their propensities, as the service does. Returns the first action drawn and the final
    probabilities."""
    bandit = VWBandit(settings=settings)
    lines = list(TWO.lines)
    first = -1
    for step in range(steps):
        probabilities = bandit.probabilities(SHARED, TWO, [0, 1])
        chosen = draw_index(probabilities, seed_from_id(f"two-{step}"))
        first = chosen if first < 0 else first
        bandit.learn(SHARED, lines, chosen, (0.9, 0.2)[chosen], probabilities[chosen])
    final = bandit.probabilities(SHARED, TWO, [0, 1])
    bandit.close()
    return first, final


@pytest.mark.parametrize("update_rule", ["adaptive", "sgd"])
def test_regcb_optimistic_moves_from_the_weak_first_draw_to_the_better_action(
    update_rule: UpdateRule,
) -> None:
    settings = BanditSettings(exploration="regcbopt", update_rule=update_rule)
    assert _two_actions_online(settings, 1) == (1, [0.5, 0.5])  # tied, then weak is drawn
    assert _two_actions_online(settings, 50)[1] == [1.0, 0.0]


def test_regcb_optimistic_keeps_the_first_draw_under_the_default_update() -> None:
    # VW's default update (adaptive + normalized + invariant): after one outcome of the weak
    # action (0.2) the untried strong one's optimistic bound no longer beats it, for good.
    settings = BanditSettings(exploration="regcbopt")
    assert _two_actions_online(settings, 1) == (1, [0.0, 1.0])
    assert _two_actions_online(settings, 500)[1] == [0.0, 1.0]


def test_regcb_optimistic_stays_uniform_when_rewards_lie_outside_its_range() -> None:
    # VW's default cost range [0, 1] is the reward range [-1, 0]: every confidence bound clips
    # to the same end, all actions tie, and the prediction never leaves uniform. This is what
    # made RegCB look broken before min_reward/max_reward were passed to VW (with the default
    # update; under "adaptive" it does leave uniform on this problem).
    settings = BanditSettings(exploration="regcbopt", min_reward=-1.0, max_reward=0.0)
    assert "--cb_min_cost 0.0 --cb_max_cost 1.0" in vw_arguments(settings)
    assert _two_actions_online(settings, 200)[1] == [0.5, 0.5]


def test_reward_range_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="min_reward"):
        BanditSettings(min_reward=1.0, max_reward=1.0)


def test_save_and_restore_give_identical_state() -> None:
    settings = BanditSettings(exploration="squarecb")
    original = VWBandit(settings=settings)
    for step in range(50):
        original.learn(SHARED, LINES, step % 6, float(step % 6 == 2), 0.2)
    restored = VWBandit(settings=settings, model_data=original.save())
    for step in range(20):
        for bandit in (original, restored):
            bandit.learn(SHARED, LINES, step % 6, float(step % 6 == 4), 0.3)
    assert original.probabilities(SHARED, TABLE, ALL) == restored.probabilities(SHARED, TABLE, ALL)


def test_learn_rejects_bad_propensity_and_index() -> None:
    bandit = VWBandit(settings=BanditSettings())
    with pytest.raises(ValueError, match="propensity"):
        bandit.learn(SHARED, LINES, 0, 1.0, 0.0)
    with pytest.raises(ValueError, match="chosen index"):
        bandit.learn(SHARED, LINES, 6, 1.0, 0.5)


def test_reused_action_examples_predict_like_freshly_parsed_text() -> None:
    bandit = VWBandit(settings=BanditSettings(exploration="epsilon", epsilon=0.1))
    subsets = [[0, 2, 5], ALL, [4], [1, 3]]
    for step in range(200):
        subset = subsets[step % len(subsets)]
        shared = format_shared({"task": {f"type=t{step % 3}": 1.0}, "description": {"w": 1.0}})
        cached = bandit.probabilities(shared, TABLE, subset)
        lines = TABLE.select(subset)
        fresh = bandit._workspace.predict([shared, *lines])
        assert cached == pytest.approx([p / sum(fresh) for p in fresh], abs=1e-12)
        chosen = step % len(subset)
        reward = 1.0 if subset[chosen] == (step % 3) else 0.0
        bandit.learn(shared, lines, chosen, reward, cached[chosen])
    assert len(set(bandit.probabilities(SHARED, TABLE, ALL))) > 1


@pytest.mark.parametrize("update_rule", ["default", "adaptive", "normalized-invariant", "sgd"])
@pytest.mark.parametrize("exploration", ["squarecb", "epsilon", "bag", "cover"])
def test_learning_over_parsed_examples_equals_learning_from_text(
    update_rule: UpdateRule, exploration: str
) -> None:
    """``learn_actions`` (parsed action examples reused under adaptive updates, text otherwise)
    keeps exactly the probabilities of ``learn`` on freshly parsed text."""
    settings = BanditSettings(exploration=exploration, update_rule=update_rule)  # type: ignore[arg-type]
    from_text, reusing = VWBandit(settings=settings), VWBandit(settings=settings)
    rng = random.Random(5)
    for _ in range(150):
        shared = format_shared({"task": {f"type=t{rng.randrange(3)}": 1.0},
                                "description": {f"w{rng.randrange(9)}": 1.0}})
        subset = sorted(rng.sample(ALL, rng.randrange(1, len(ALL) + 1)))
        probabilities = from_text.probabilities(shared, TABLE, subset)
        assert reusing.probabilities(shared, TABLE, subset) == probabilities
        chosen = draw_index(probabilities, rng.getrandbits(64))
        reward = rng.random() * (1.0 if subset[chosen] % 2 else 0.3)
        from_text.learn(shared, TABLE.select(subset), chosen, reward, probabilities[chosen])
        reusing.learn_actions(shared, TABLE, subset, chosen, reward, probabilities[chosen])
    assert from_text.probabilities(SHARED, TABLE, ALL) == reusing.probabilities(SHARED, TABLE, ALL)
    assert len(set(reusing.probabilities(SHARED, TABLE, ALL))) > 1


def test_learn_actions_rejects_bad_propensity_and_index() -> None:
    bandit = VWBandit(settings=BanditSettings())
    with pytest.raises(ValueError, match="propensity"):
        bandit.learn_actions(SHARED, TABLE, ALL, 0, 1.0, 0.0)
    with pytest.raises(ValueError, match="chosen index"):
        bandit.learn_actions(SHARED, TABLE, ALL, 6, 1.0, 0.5)
