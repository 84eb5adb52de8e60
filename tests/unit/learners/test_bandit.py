from __future__ import annotations

import random

import numpy as np
import pytest
from vowpalwabbit import Workspace

from learners.bandit.action_lines import ActionLines
from learners.bandit.sampling import draw_index, normalize, seed_from_id, squarecb
from learners.bandit.settings import BanditSettings, UpdateRule, slot_factorisable, vw_arguments
from learners.bandit.vw_bandit import VWBandit
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


def test_a_context_without_features_is_still_the_shared_line() -> None:
    """A context whose features are all left out (learners/constant_features.py) is scored
    as the shared line: the approved action comes out on top, not one action line off."""
    catalog = Catalog(
        models=[ModelSpec(name="m", input_price_per_mtok=1, output_price_per_mtok=1,
                          typical_latency_s=1)],
        templates=[TemplateSpec(name="a", style="tests"), TemplateSpec(name="b", style="tests")],
        temperatures=[0.0, 0.5])
    table = ActionLines(catalog)
    indices = list(range(len(catalog)))
    bandit = VWBandit(settings=BanditSettings())
    empty = format_shared({})
    bandit.learn_actions(empty, table, indices, 2, 1.0, 0.25)
    costs = bandit.costs(empty, table, indices)
    assert int(np.argmin(costs)) == 2
    assert sorted(costs)[1] > costs[2] + 0.1
    bandit.close()


@pytest.mark.parametrize("exploration", ["epsilon", "squarecb", "cover", "bag", "softmax"])
def test_every_exploration_learns_the_rewarded_action(exploration: str) -> None:
    bandit = VWBandit(settings=BanditSettings(exploration=exploration, epsilon=0.1))  # type: ignore[arg-type]
    assert exploration in bandit.arguments
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
    restored = VWBandit(settings=settings)
    restored.restore(original.snapshot())
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
    keeps exactly the probabilities of ``learn`` on freshly parsed text (the lines without the
    namespaces the subset's actions share)."""
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
        lines = TABLE.varying_lines(subset) or TABLE.select(subset)
        from_text.learn(shared, lines, chosen, reward, probabilities[chosen])
        reusing.learn_actions(shared, TABLE, subset, chosen, reward, probabilities[chosen])
    assert from_text.probabilities(SHARED, TABLE, ALL) == reusing.probabilities(SHARED, TABLE, ALL)
    assert len(set(reusing.probabilities(SHARED, TABLE, ALL))) > 1


def test_learn_actions_rejects_bad_propensity_and_index() -> None:
    bandit = VWBandit(settings=BanditSettings())
    with pytest.raises(ValueError, match="propensity"):
        bandit.learn_actions(SHARED, TABLE, ALL, 0, 1.0, 0.0)
    with pytest.raises(ValueError, match="chosen index"):
        bandit.learn_actions(SHARED, TABLE, ALL, 6, 1.0, 0.5)


RICH = Catalog(
    models=[
        ModelSpec(name=f"m{i}", input_price_per_mtok=0.5 * i, output_price_per_mtok=2.0 * i,
                  typical_latency_s=1.0 + i, tier=("frontier", "small", None)[i % 3])
        for i in range(4)
    ],
    templates=[TemplateSpec(name=f"tpl{j}", prompt_tokens=100 * j, output_factor=1.0 + j / 4,
                            style=("plain", "cot", None)[j % 3],
                            languages=["python"] if j == 2 else [])
               for j in range(4)],
    temperatures=[0.0, 0.3, 0.8],
)


def _context(rng: random.Random) -> str:
    return format_shared({
        "task": {f"type=t{rng.randrange(3)}": 1.0, "complexity": rng.random()},
        "description": {f"w{rng.randrange(12)}": 1.0 for _ in range(5)},
        "caller": {f"agent=a{rng.randrange(2)}": 1.0},
    })


def _reward(shared: str, action: int) -> float:
    model, rest = divmod(action, 12)
    return min(1.0, 0.2 + 0.15 * model * (1 if "type=t1" in shared else -0.5) + 0.05 * rest % 3)


# RICH with one temperature and one template.
NARROW = Catalog(models=RICH.models, templates=RICH.templates[:1], temperatures=[0.3])


@pytest.mark.parametrize("catalog", [RICH, NARROW], ids=["rich", "narrow"])
def test_factorised_costs_equal_the_costs_of_whole_action_lines(catalog: Catalog) -> None:
    """The per-namespace sum (one line per model, temperature and template, plus the
    context-free terms) equals VW's cost of each whole action line, through learning (with
    the namespaces a request's actions share left out of what is learned) and with a drift
    flag on one model's lines."""
    bandit = VWBandit(settings=BanditSettings())
    assert "factorised=True" in bandit.arguments
    rng = random.Random(11)
    tables = [ActionLines(catalog), ActionLines(catalog, frozenset({"m2"}))]
    everything = list(range(len(catalog.actions)))
    for step in range(300):
        table = tables[step // 100 % 2]
        shared = _context(rng)
        subset = sorted(rng.sample(everything, rng.randrange(1, len(everything) + 1)))
        factorised = bandit.costs(shared, table, subset)
        whole = bandit._workspace.predict([shared, *table.select(subset)])
        assert factorised == pytest.approx(whole, abs=2e-5)
        probabilities = bandit.probabilities(shared, table, subset)
        chosen = draw_index(probabilities, rng.getrandbits(64))
        bandit.learn_actions(shared, table, subset, chosen, _reward(shared, subset[chosen]),
                             probabilities[chosen])
    assert np.ptp(bandit.costs(SHARED, tables[0], everything)) > 0.05  # it learned something
    # Every action in catalog order skips the gather; a tuple of the same indices takes it.
    for table in tables:
        for shared in (SHARED, _context(rng)):
            assert bandit.costs(shared, table, everything).tolist() == bandit.costs(
                shared, table, tuple(everything)).tolist()
    bandit.close()


def test_namespaces_every_given_action_shares_are_left_out_of_varying_lines() -> None:
    table = ActionLines(RICH)
    one_template = [i for i, a in enumerate(RICH.actions) if a.template.name == "tpl0"]
    lines = table.varying_lines(one_template)
    assert lines is not None
    assert [line.split(" |Z")[0] for line in lines] == [
        line.split(" |L")[0] for line in table.select(one_template)]
    assert all(line.endswith(" |Z") for line in lines)
    narrow = [i for i in one_template if RICH.actions[i].temperature == 0.3]
    assert all(line.endswith("|Z |Z") for line in table.varying_lines(narrow) or [])
    assert table.varying_lines(list(range(len(RICH.actions)))) is None  # every one varies
    assert table.varying_lines(narrow[:1]) is None  # one action: nothing to compare


@pytest.mark.parametrize("drop", [True, False])
def test_what_a_request_cannot_compare_is_not_learned(drop: bool) -> None:
    """Outcomes of requests whose actions all share one template teach nothing about
    templates: two actions that differ only by template keep equal predicted rewards."""
    bandit = VWBandit(settings=BanditSettings(drop_constant_actions=drop))
    table = ActionLines(RICH)
    ids = [a.id for a in RICH.actions]
    one_template = [i for i, a in enumerate(RICH.actions) if a.template.name == "tpl0"]
    rng = random.Random(5)
    for _ in range(60):
        shared = _context(rng)
        chosen = rng.randrange(len(one_template))
        bandit.learn_actions(shared, table, one_template, chosen,
                             rng.random(), 1.0 / len(one_template))
    pair = [ids.index("m1|0.3|tpl0"), ids.index("m1|0.3|tpl1")]
    costs = bandit.costs(SHARED, table, pair)
    bandit.close()
    assert (abs(costs[0] - costs[1]) < 1e-6) == drop, costs


def test_squarecb_equals_vws_own_squarecb() -> None:
    """The probabilities equal VW's ``--cb_explore_adf --squarecb`` learning the same outcomes,
    as long as the chosen action is never the example's last line (VW 9.11 keeps the
    importance weight of that one line only; this bandit drops it for every line), except that
    this bandit reads predicted rewards above ``max_reward`` as ``max_reward``. VW's γ scale is
    this bandit's times √K (K allowed actions): every request here allows K of them."""
    settings = BanditSettings()
    ours = VWBandit(settings=settings)
    table = ActionLines(RICH)
    everything = list(range(len(RICH.actions)))
    k = len(everything) // 2 + 1
    interactions = " ".join(f"-q {pair}" for pair in settings.interactions)
    theirs = Workspace(f"--cb_explore_adf --squarecb --gamma_scale "
                       f"{settings.gamma_scale * k ** 0.5} --quiet -b {settings.bits} "
                       f"-l {settings.learning_rate} {interactions}")
    rng = random.Random(4)
    capped = 0
    for step in range(300):
        shared = _context(rng)
        subset = sorted(rng.sample(everything, k))
        probabilities = ours.probabilities(shared, table, subset)
        costs = ours.costs(shared, table, subset)
        gamma = settings.gamma_scale * ours.learned ** 0.5 * k ** 0.5
        assert probabilities == squarecb(np.maximum(costs, -settings.max_reward), gamma)
        capped += bool((costs < -settings.max_reward).any())
        lines = table.select(subset)
        if step:  # the first prediction is all ties: VW sorts them its own way
            assert squarecb(costs, gamma) == pytest.approx(theirs.predict([shared, *lines]),
                                                           abs=1e-5)
        chosen = draw_index(probabilities[:-1], rng.getrandbits(64))
        reward = _reward(shared, subset[chosen])
        ours.learn_actions(shared, table, subset, chosen, reward, probabilities[chosen])
        labelled = list(lines)
        labelled[chosen] = f"{format_label(reward, probabilities[chosen])} {lines[chosen]}"
        theirs.learn([shared, *labelled])
    assert max(ours.probabilities(SHARED, table, everything)) > 0.2
    assert capped > 0  # some steps predicted a reward above max_reward
    theirs.finish()


def test_squarecb_learning_does_not_depend_on_where_the_chosen_action_is_listed() -> None:
    forward, backward = VWBandit(settings=BanditSettings()), VWBandit(settings=BanditSettings())
    table = ActionLines(RICH)
    rng = random.Random(8)
    everything = list(range(len(RICH.actions)))
    for _ in range(100):
        shared = _context(rng)
        chosen = rng.randrange(len(everything))
        reward, propensity = _reward(shared, chosen), rng.uniform(0.01, 1.0)
        forward.learn_actions(shared, table, everything, chosen, reward, propensity)
        backward.learn_actions(shared, table, everything[::-1], len(everything) - 1 - chosen,
                               reward, propensity)
    assert forward.costs(SHARED, table, everything) == pytest.approx(
        backward.costs(SHARED, table, everything), abs=1e-6)


def test_interactions_that_cross_the_context_with_two_action_namespaces_are_not_factorised(
) -> None:
    assert slot_factorisable(BanditSettings().interactions)
    assert slot_factorisable(["TM", "MLP", "TT", "TMM"])
    assert not slot_factorisable(["TM", "TML"])
    settings = BanditSettings(interactions=("TM", "TML", "ML"))
    bandit = VWBandit(settings=settings)
    assert "factorised=False" in bandit.arguments
    table = ActionLines(RICH)
    rng = random.Random(2)
    for _ in range(50):
        shared = _context(rng)
        bandit.learn_actions(shared, table, [0, 5, 17, 30], 1, 0.7, 0.5)
    shared = _context(rng)
    whole = bandit._workspace.predict([shared, *table.lines])
    assert bandit.costs(shared, table, list(range(len(RICH.actions)))) == pytest.approx(whole)
    bandit.close()


def test_squarecb_learns_as_if_every_allowed_action_line_were_given() -> None:
    """Featureless stand-ins for the actions not chosen give the weights VW's ``cb_adf`` learns
    from every real action line (with the label's probability 1, as SquareCB learns)."""
    settings = BanditSettings()
    table = ActionLines(RICH)
    bandits = [VWBandit(settings=settings),
               VWBandit(settings=BanditSettings(update_rule="sgd", learning_rate=0.1))]
    references = [Workspace(vw_arguments(b.settings)) for b in bandits]
    rng = random.Random(6)
    everything = list(range(len(RICH.actions)))
    for _ in range(150):
        shared = _context(rng)
        subset = sorted(rng.sample(everything, rng.randrange(1, len(everything) + 1)))
        chosen = rng.randrange(len(subset))
        reward = _reward(shared, subset[chosen])
        lines = table.varying_lines(subset) or table.select(subset)
        labelled = list(lines)
        labelled[chosen] = f"{format_label(reward, 1.0)} {lines[chosen]}"
        for bandit, reference in zip(bandits, references, strict=True):
            bandit.learn_actions(shared, table, subset, chosen, reward, 0.25)
            reference.learn([shared, *labelled])
    for bandit, reference in zip(bandits, references, strict=True):
        shared = _context(rng)
        assert bandit.costs(shared, table, everything) == pytest.approx(
            reference.predict([shared, *table.lines]), abs=1e-5)
        reference.finish()
