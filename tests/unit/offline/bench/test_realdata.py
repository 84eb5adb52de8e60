"""The real-data benchmark: loading, cost estimate, hull, references, harness, report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from learners.bandit.settings import BanditSettings
from learners.catalog import Catalog
from learners.features import ContextFeatures
from learners.policy import LearnEvent, OnlinePolicy
from offline.bench.realdata.benchmark import BenchmarkSpec, run_online, run_warm
from offline.bench.realdata.data import (
    ASSUMED_OUTPUT_TOKENS,
    ModelPrice,
    RealData,
    build_catalog,
    default_data_dir,
    estimate_costs,
    load_real_data,
)
from offline.bench.realdata.frontier import (
    Point,
    best_single,
    choice_point,
    hull_accuracy,
    oracle_choices,
    zero_router_hull,
)
from offline.bench.realdata.harness import route_online, warm_start
from offline.bench.realdata.policies import UnknownPolicyError, resolve_policy
from offline.bench.realdata.prompts import guess_task_type, prompt_context
from offline.bench.realdata.report import format_protocol, format_targets, save_plot
from router.cli import main
from tests.support import sample_code_prompts

CONFIG = Path(__file__).resolve().parents[4] / "configs" / "default.toml"
DATA = default_data_dir()
needs_data = pytest.mark.skipif(
    not (DATA / "outcomes.jsonl.gz").is_file(), reason=f"real outcome data not found at {DATA}"
)


@pytest.fixture(scope="module")
def real() -> RealData:
    if not (DATA / "outcomes.jsonl.gz").is_file():
        pytest.skip(f"real outcome data not found at {DATA}")
    return load_real_data(DATA)


@pytest.fixture(scope="module")
def code_sample(real: RealData) -> RealData:
    """60 train and 30 test code prompts, a fixed random sample."""
    return sample_code_prompts(real.subset("code"))


def _tiny(prompts: list[str], scores: list[list[float]]) -> RealData:
    return RealData(
        ids=[f"p{i}" for i in range(len(prompts))], splits=["test"] * len(prompts),
        tasks=["mbpp"] * len(prompts), prompts=prompts,
        scores=np.array(scores, dtype=np.float64), models=["cheap", "dear"],
        prices={"cheap": ModelPrice(input_price_per_mtok=0.2, output_price_per_mtok=0.4),
                "dear": ModelPrice(input_price_per_mtok=0.9, output_price_per_mtok=1.8)},
    )


# --------------------------------------------------------------------------- loading, costs
@needs_data
def test_loads_every_prompt_with_nine_priced_models(real: RealData) -> None:
    assert len(real) == 6108
    assert len(real.models) == 9
    assert real.splits.count("train") == 5608
    assert len(real.subset("code")) == 762
    assert set(real.subset("code").tasks) == {"mbpp", "human_eval"}
    assert all(real.prices[m].input_price_per_mtok > 0 for m in real.models)


def test_missing_data_directory_is_reported(tmp_path: Path) -> None:
    from offline.bench.realdata.data import RealDataError

    with pytest.raises(RealDataError, match=r"outcomes\.jsonl\.gz: no such file"):
        load_real_data(tmp_path)


def test_cost_is_prompt_tokens_plus_assumed_output_at_the_prices() -> None:
    data = _tiny(["x" * 400, "y" * 40], [[1.0, 1.0], [0.0, 1.0]])
    costs = estimate_costs(data)
    # 400 characters = 100 input tokens.
    assert costs[0, 0] == pytest.approx((100 * 0.2 + ASSUMED_OUTPUT_TOKENS * 0.4) / 1e6)
    assert costs[1, 1] == pytest.approx((10 * 0.9 + ASSUMED_OUTPUT_TOKENS * 1.8) / 1e6)
    assert estimate_costs(data, output_tokens=0)[0, 1] == pytest.approx(100 * 0.9 / 1e6)


def test_catalog_is_pure_model_routing() -> None:
    catalog = build_catalog(_tiny(["a"], [[1.0, 0.0]]))
    assert [a.model.name for a in catalog.actions] == ["cheap", "dear"]
    assert len({(a.temperature, a.template.name) for a in catalog.actions}) == 1
    assert catalog.actions[1].model.output_price_per_mtok == 1.8


def test_task_type_comes_from_the_text_only() -> None:
    assert guess_task_type("def add(a, b):\n    '''Add.'''") == "code generation"
    assert guess_task_type("Write a function to reverse a list.") == "code generation"
    assert guess_task_type("What is $x$ if $x^2 = 4$?") == "math"
    assert guess_task_type("dog, frisbee, catch, throw") == "word list"
    assert guess_task_type("who wrote hamlet") == "question"
    code = prompt_context("Write a function to add.", "code").task
    assert (code.type, code.language) == ("code generation", "python")


# ----------------------------------------------------------------------- reference figures
def test_hull_matches_hand_computed_frontier() -> None:
    points = [Point(1, 0.5), Point(2, 0.6), Point(2, 0.55), Point(3, 0.9), Point(4, 0.85),
              Point(5, 0.95)]
    # (2, 0.6) lies below the segment (1, 0.5) → (3, 0.9); (4, 0.85) is dominated by (3, 0.9).
    assert zero_router_hull(points) == [Point(1, 0.5), Point(3, 0.9), Point(5, 0.95)]
    hull = zero_router_hull(points)
    assert hull_accuracy(hull, 2.0) == pytest.approx(0.7)
    assert hull_accuracy(hull, 4.0) == pytest.approx(0.925)
    assert hull_accuracy(hull, 6.0) == pytest.approx(0.95)
    assert hull_accuracy(hull, 0.5) is None
    assert hull_accuracy(hull, 1.0 - 1e-12) == pytest.approx(0.5)


def test_oracle_breaks_ties_by_cost_and_best_single_follows_lambda() -> None:
    data = _tiny(["a" * 40] * 3, [[1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    costs = estimate_costs(data)
    assert oracle_choices(data.scores, costs, 0.0).tolist() == [0, 1, 0]
    assert best_single(data.scores, costs, 0.0) == 0  # tie in accuracy (2/3): the cheaper
    steep = _tiny(["a" * 40] * 2, [[0.0, 1.0], [0.5, 1.0]])
    steep_costs = estimate_costs(steep)
    assert best_single(steep.scores, steep_costs, 0.0) == 1
    assert best_single(steep.scores, steep_costs, 1e6) == 0


@needs_data
def test_code_subset_reproduces_the_data_readme_figures(real: RealData) -> None:
    code = real.subset("code")
    costs = estimate_costs(code)
    best = best_single(code.scores, costs, 0.0)
    assert code.models[best] == "llama-3.3-nemotron-super-49b-v1"
    n = len(code)
    assert choice_point(code.scores, costs, np.full(n, best)).accuracy == pytest.approx(
        0.719, abs=5e-4)
    assert choice_point(code.scores, costs, oracle_choices(code.scores, costs, 0.0)).accuracy \
        == pytest.approx(0.869, abs=5e-4)


# --------------------------------------------------------------------------------- harness
class AlwaysFirst:
    """A policy with OnlinePolicy's interface that always picks the first allowed action."""

    def __init__(self) -> None:
        self.events: list[LearnEvent] = []

    def probabilities(self, features: ContextFeatures, catalog: Catalog,
                      allowed: Sequence[int]) -> list[float]:
        return [1.0] + [0.0] * (len(allowed) - 1)

    def learn(self, event: LearnEvent) -> None:
        self.events.append(event)


def test_harness_learns_score_minus_lambda_cost_of_the_chosen_model() -> None:
    data = _tiny(["a" * 40, "b" * 80], [[1.0, 0.0], [0.0, 1.0]])
    from offline.bench.realdata.benchmark import make_workload

    workload = make_workload(data, "code", ASSUMED_OUTPUT_TOKENS)
    policy = AlwaysFirst()
    choices = route_online(policy, build_catalog(data), workload, 1000.0, seed=3)
    assert choices.tolist() == [0, 0]
    by_score = sorted((e.quality, e.reward, e.propensity) for e in policy.events)
    assert [q for q, _, _ in by_score] == [0.0, 10.0]
    assert by_score[0][1] == pytest.approx(0.0 - 1000.0 * workload.costs[1, 0])
    assert by_score[1][1] == pytest.approx(1.0 - 1000.0 * workload.costs[0, 0])
    assert all(p == 1.0 for _, _, p in by_score)


def test_vw_policy_runs_end_to_end_by_name(code_sample: RealData) -> None:
    from offline.bench.realdata.benchmark import make_workload

    factory = resolve_policy("vw")
    assert resolve_policy("offline.bench.realdata.policies:create_vw_policy") is not None
    with pytest.raises(UnknownPolicyError, match="unknown policy"):
        resolve_policy("no-such-policy")
    catalog = build_catalog(code_sample)
    history = make_workload(code_sample.split("train"), "code", ASSUMED_OUTPUT_TOKENS)
    test = make_workload(code_sample.split("test"), "code", ASSUMED_OUTPUT_TOKENS)
    policy = factory(catalog, BanditSettings(), 0)
    assert isinstance(policy, OnlinePolicy)
    warm_start(policy, catalog, history, 100.0, seed=0)
    assert policy.learned == len(history) * len(catalog)
    choices = route_online(policy, catalog, test, 100.0, seed=0)
    assert policy.learned == len(history) * len(catalog) + len(test)
    assert choices.min() >= 0
    assert choices.max() < len(catalog)
    policy.close()


def test_an_exploration_variant_is_the_vw_policy_under_its_spec() -> None:
    data = _tiny(["a" * 40], [[1.0, 0.0]])
    configured = BanditSettings(exploration="squarecb", learning_rate=0.3)
    policy = resolve_policy("vw:cover=3,epsilon=0.1")(build_catalog(data), configured, 4)
    assert isinstance(policy, OnlinePolicy)
    assert policy.settings == BanditSettings(exploration="cover", cover_size=3, epsilon=0.1,
                                             learning_rate=0.3, seed=4)
    policy.close()
    with pytest.raises(UnknownPolicyError, match="unknown exploration 'regcb'"):
        resolve_policy("vw:regcb")


def test_the_reward_range_reaches_down_to_lambda_times_the_dearest_cost() -> None:
    from offline.bench.realdata.benchmark import bandit_for_lambda, make_workload

    workload = make_workload(_tiny(["a" * 40, "b" * 4000], [[1.0, 0.0], [0.0, 1.0]]), "code",
                             ASSUMED_OUTPUT_TOKENS)
    dearest = float(workload.costs.max())
    assert dearest == workload.costs[1, 1]  # the long prompt on the dear model
    assert bandit_for_lambda(BanditSettings(), 0.0, [workload]) == BanditSettings()
    widened = bandit_for_lambda(BanditSettings(), 300.0, [workload])
    assert widened.min_reward == pytest.approx(-300.0 * dearest)
    assert widened.max_reward == 1.0


def test_both_protocols_report_and_plot(code_sample: RealData, tmp_path: Path) -> None:
    spec = BenchmarkSpec(subset="code", lambdas=[0.0, 300.0], seeds=[0, 1],
                         policies={"vw": resolve_policy("vw")}, bandit=BanditSettings(),
                         output_tokens=ASSUMED_OUTPUT_TOKENS)
    online = run_online(code_sample, spec)
    warm = run_warm(code_sample, spec)
    assert online.n_eval == 90
    assert warm.n_eval == 30
    assert warm.n_history <= 60
    for result in (online, warm):
        assert [t.lam for t in result.tables] == [0.0, 300.0]
        rows = {row.policy: row for row in result.tables[0].rows}
        assert rows["oracle"].gap_closed == pytest.approx(1.0)
        assert rows["oracle"].accuracy.mean == pytest.approx(result.oracle_accuracy)
        vw = next(row for row in result.tables[0].rows if row.policy.startswith("vw"))
        assert vw.accuracy.runs == 2
    warm_policies = {row.policy for row in warm.tables[1].rows}
    assert {"batch repo", "batch text", "batch repo+text", "uniform"} <= warm_policies
    assert any(p.startswith("best single, chosen on train") for p in warm_policies)
    text = format_protocol(warm) + "\n" + format_targets(warm)
    assert "λ = 300" in text
    assert "gap closed ≥ 25%" in text
    plot = tmp_path / "costs.png"
    save_plot([online, warm], plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rejects_a_missing_data_directory(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench-real", "--data", str(tmp_path), "--config", str(CONFIG)])
    assert code == 2
    assert "no such file" in capsys.readouterr().err
