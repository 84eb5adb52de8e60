"""The simulation driver against a fake router (httpx.MockTransport): protocol and report."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import httpx
import msgspec
import pytest

from learners.catalog import Catalog
from learners.reward import DEFAULT_PROFILES
from offline.simulate import SimulationError, SimulationReport, configure_parser, simulate
from offline.world import World

BALANCED = DEFAULT_PROFILES["balanced"]


class FakeRouter:
    """Always answers one action; records the order of route and feedback calls."""

    def __init__(
        self, model: str = "mid-general", template: str = "plain", fail_feedback: bool = False
    ) -> None:
        self.model, self.template, self.fail_feedback = model, template, fail_feedback
        self.routes: list[dict[str, object]] = []
        self.feedback: list[tuple[int, dict[str, object]]] = []  # (routes seen, body)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if request.url.path == "/v1/route":
            self.routes.append(body)
            return httpx.Response(
                200,
                json={
                    "decision_id": f"d{len(self.routes) - 1}",
                    "model": self.model,
                    "temperature": 0.2,
                    "template": self.template,
                    "propensity": 0.5,
                },
            )
        if self.fail_feedback:
            return httpx.Response(422, json={"detail": "quality: expected <= 10"})
        self.feedback.append((len(self.routes), body))
        return httpx.Response(200, json={"reward": 0.5, "duplicate": False})


async def _run(
    router: FakeRouter, catalog: Catalog, n: int = 60, feedback_delay: int = 0, concurrency: int = 1
) -> SimulationReport:
    transport = httpx.MockTransport(router)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
        world = World(catalog=catalog, seed=1)
        return await simulate(
            client,
            world,
            n=n,
            seed=3,
            profile=BALANCED,
            request_prefix="t",
            feedback_delay=feedback_delay,
            concurrency=concurrency,
        )


async def test_every_decision_gets_one_feedback_with_the_contract_fields(catalog: Catalog) -> None:
    router = FakeRouter()
    report = await _run(router, catalog)
    assert len(router.routes) == 60
    assert len({r["request_id"] for r in router.routes}) == 60
    assert sorted(int(str(b["decision_id"])[1:]) for _, b in router.feedback) == list(range(60))
    assert {frozenset(b) for _, b in router.feedback} == {
        frozenset(
            {
                "decision_id",
                "outcome",
                "quality",
                "generation_time_s",
                "cost_usd",
                "tokens",
                "regenerations",
            }
        )
    }
    assert all(b["outcome"] in {"approved", "modified", "rejected"} for _, b in router.feedback)
    assert report.n == len(report.router_rewards) == len(report.oracle_rewards) == 60
    assert report.uniform_mean < report.oracle_mean
    assert report.router_mean <= report.oracle_mean
    assert report.best_fixed_mean >= report.router_mean  # the router's fixed action is a candidate


async def test_feedback_waits_at_most_the_delay(catalog: Catalog) -> None:
    router = FakeRouter()
    await _run(router, catalog, feedback_delay=4)
    lags = [seen - 1 - int(str(b["decision_id"])[1:]) for seen, b in router.feedback]
    assert len(lags) == 60
    assert max(lags) <= 4
    assert min(lags) == 0
    assert len(set(lags)) > 2


async def test_results_do_not_depend_on_concurrency(catalog: Catalog) -> None:
    one = await _run(FakeRouter(), catalog, concurrency=1)
    four = await _run(FakeRouter(), catalog, concurrency=4)
    assert one.router_rewards == four.router_rewards
    assert one.best_fixed_action == four.best_fixed_action


async def test_non_2xx_answer_fails_with_the_body(catalog: Catalog) -> None:
    with pytest.raises(SimulationError, match=r"422.*quality: expected"):
        await _run(FakeRouter(fail_feedback=True), catalog, n=3)


async def test_action_outside_the_catalog_fails(catalog: Catalog) -> None:
    with pytest.raises(SimulationError, match="not in the simulation's catalog"):
        await _run(FakeRouter(template="no-such-template"), catalog, n=2)


async def test_language_restricted_choice_on_another_language_fails(catalog: Catalog) -> None:
    with pytest.raises(SimulationError, match="not allowed"):
        await _run(FakeRouter(template="sql-focused"), catalog, n=40)


async def test_report_table_plot_and_json(catalog: Catalog, tmp_path: Path) -> None:
    report = await _run(FakeRouter(), catalog, n=50)
    table = report.format_table()
    for name in ("router", "oracle", "best fixed", "uniform", "regret"):
        assert name in table
    assert f"{report.router_mean:.4f}" in table
    report.save_plot(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = msgspec.json.decode(msgspec.json.encode(report), type=SimulationReport)
    assert decoded == report


def test_parser_defaults() -> None:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    args = parser.parse_args(["--drift-model", "small-fast", "--drift-at", "100"])
    assert (args.n, args.profile, args.url, args.feedback_delay, args.concurrency) == (
        5000,
        "balanced",
        None,
        0,
        1,
    )
    assert (args.drift_model, args.drift_at) == ("small-fast", 100)
