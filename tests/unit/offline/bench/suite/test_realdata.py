"""Replays of the recorded LLM outcomes as suite environments."""

from __future__ import annotations

from collections import Counter

import msgspec
import numpy as np
import pytest

from learners.context import MAX_DESCRIPTION_CHARS, Task
from offline.bench.realdata.data import RealData, default_data_dir, load_real_data
from offline.bench.suite.realdata import (
    COST_WEIGHTS,
    PASSES,
    RealOutcomeEnvironment,
    environments,
    request_context,
    summarise_pass,
)

DATA = default_data_dir()


@pytest.fixture(scope="module")
def envs() -> dict[str, RealOutcomeEnvironment]:
    if not (DATA / "outcomes.jsonl.gz").is_file():
        pytest.skip(f"real outcome data not found at {DATA}")
    built = environments(DATA)
    envs = {env.name: env for env in built if isinstance(env, RealOutcomeEnvironment)}
    assert len(envs) == len(built)
    return envs


@pytest.fixture(scope="module")
def real() -> RealData:
    if not (DATA / "outcomes.jsonl.gz").is_file():
        pytest.skip(f"real outcome data not found at {DATA}")
    return load_real_data(DATA)


def test_all_prompts_and_the_code_subset_at_every_cost_weight(
    envs: dict[str, RealOutcomeEnvironment], real: RealData,
) -> None:
    assert set(envs) == {f"real-{s}-l{lam:g}" for s in ("all", "code") for lam in COST_WEIGHTS}
    assert len(envs["real-all-l0"].data) == len(real)
    assert Counter(envs["real-code-l0"].data.tasks) == {"mbpp": 548, "human_eval": 214}
    for env in envs.values():
        assert env.kind == "real"
        assert env.skyline(0) is None
        assert [m.name for m in env.catalog.models] == real.models
        for model in env.catalog.models:
            assert model.input_price_per_mtok == real.prices[model.name].input_price_per_mtok
            assert model.output_price_per_mtok == real.prices[model.name].output_price_per_mtok
        assert len(env.catalog) == len(real.models) == 9


def test_each_prompt_once_per_pass_in_a_seeded_order(
    envs: dict[str, RealOutcomeEnvironment],
) -> None:
    env = envs["real-code-l0.2"]
    n = len(env.data)
    order = env.order(4)
    assert order.shape == (PASSES * n,)
    for p in range(PASSES):
        assert sorted(order[p * n:(p + 1) * n].tolist()) == list(range(n))
    assert not np.array_equal(order[:n], order[n:])  # each pass its own order
    assert np.array_equal(env.order(4), order)
    assert not np.array_equal(env.order(5), order)
    steps = list(env.steps(4))
    assert [s.index for s in steps] == list(range(PASSES * n))
    assert all(s.context is env.contexts[row] for s, row in zip(steps, order, strict=True))


def test_without_cost_weight_the_expected_rewards_are_the_recorded_scores(
    envs: dict[str, RealOutcomeEnvironment], real: RealData,
) -> None:
    for subset in ("all", "code"):
        env = envs[f"real-{subset}-l0"]
        recorded = real.subset(subset)
        rng = np.random.default_rng(0)
        for step, row in zip(env.steps(0), env.order(0), strict=True):
            assert np.array_equal(step.expected, recorded.scores[row])
        step = next(env.steps(0))
        assert [env.reward(step, a, rng) for a in range(9)] == step.expected.tolist()


def test_a_cost_weight_charges_the_pricier_models_more(
    envs: dict[str, RealOutcomeEnvironment],
) -> None:
    free, charged = envs["real-all-l0"], envs["real-all-l0.5"]
    assert np.all(charged.rewards <= free.rewards)
    assert np.all((charged.rewards >= 0.0) & (charged.rewards <= 1.0))
    passed = free.rewards == 1.0  # where a model passed, the reward lost is its scaled cost
    lost = np.where(passed, free.rewards - charged.rewards, np.nan)
    by_model = np.nanmean(lost, axis=0)
    prices = np.array([m.input_price_per_mtok for m in free.catalog.models])
    assert by_model[np.argmax(prices)] > 4 * by_model[np.argmin(prices)]
    # The cost weight changes which single model is best.
    assert np.argmax(free.rewards.mean(axis=0)) != np.argmax(charged.rewards.mean(axis=0))


def test_the_request_is_what_a_caller_sends(envs: dict[str, RealOutcomeEnvironment]) -> None:
    env = envs["real-all-l0"]
    for context, family, prompt in zip(env.contexts, env.data.tasks, env.data.prompts,
                                       strict=True):
        task = msgspec.convert(msgspec.to_builtins(context.task), Task)  # request limits
        assert task.type == family
        assert task.language == ("python" if family in {"mbpp", "human_eval"} else "text")
        assert task.description == prompt.strip()[:MAX_DESCRIPTION_CHARS]
    long = request_context("x" * (MAX_DESCRIPTION_CHARS + 10), "gsm8k")
    assert len(long.task.description) == MAX_DESCRIPTION_CHARS


def test_the_second_pass_summary_places_runs_against_the_simple_answers(
    envs: dict[str, RealOutcomeEnvironment],
) -> None:
    env = envs["real-code-l0"]
    order = env.order(0)
    n = len(env.data)
    best = int(np.argmax(env.data.scores.mean(axis=0)))
    always_best = summarise_pass(env, 0, np.full(order.size, best))
    assert always_best.best_single_model == env.data.models[best]
    assert always_best.accuracy == pytest.approx(always_best.best_single_accuracy)
    assert always_best.accuracy_above_hull == pytest.approx(0.0, abs=1e-12)
    # The oracle on the second pass only: the first pass does not count.
    oracle = np.argmax(env.rewards, axis=1)[order]
    oracle[:n] = best
    summary = summarise_pass(env, 0, oracle)
    assert summary.accuracy == pytest.approx(summary.oracle_reward)
    assert summary.accuracy_above_best_single > 0.1
    above_hull = summary.accuracy_above_hull
    assert above_hull is not None
    assert above_hull > 0.1
    first = summarise_pass(env, 0, oracle, pass_index=0)
    assert first.accuracy == pytest.approx(always_best.accuracy)
    # The cheapest model is the hull's first point.
    cheapest = int(np.argmin(env.costs.mean(axis=0)))
    thrifty = summarise_pass(env, 0, np.full(order.size, cheapest))
    assert thrifty.hull_accuracy == pytest.approx(thrifty.accuracy)
    with pytest.raises(ValueError, match="choices for a run"):
        summarise_pass(env, 0, oracle[:-1])
    with pytest.raises(ValueError, match="catalog indices"):
        summarise_pass(env, 0, np.full(order.size, 9))


def test_the_environment_refuses_a_negative_cost_weight(real: RealData) -> None:
    with pytest.raises(ValueError, match="cost_weight"):
        RealOutcomeEnvironment(data=real.subset("code"), subset="code", cost_weight=-0.1)
