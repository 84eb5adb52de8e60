"""``GET /metrics`` and the drift part of ``GET /v1/stats``: requests, decisions and outcomes,
and what the online policy knows, exposed in Prometheus text and JSON."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families

from router.app import create_app
from router.services.routing import RoutingService
from tests.support import collapse_model, make_settings

TASK = {"type": "backend", "language": "python", "description": "Add a cached REST endpoint"}


async def test_metrics_count_learned_outcomes_and_show_drift_alarms(
    client: AsyncTestClient[Any],
) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "router_learned_outcomes 0.0" in response.text
    assert "router_drift_alarm_active{" not in response.text
    decision = (await client.post("/v1/route", json={"task": TASK})).json()
    feedback = await client.post("/v1/feedback", json={"decision_id": decision["decision_id"],
                                                       "outcome": "approved"})
    assert feedback.status_code == 200, feedback.text
    assert "router_learned_outcomes 1.0" in (await client.get("/metrics")).text
    stats = (await client.get("/v1/stats")).json()
    assert stats["drift"] == {"active": [], "raised_total": 0}

    # A model whose outcomes collapse: the policy's detector raises an alarm that both views show.
    routing: RoutingService = client.app.state.routing
    collapse_model(routing.learner.policies.for_tenant("default"), routing.catalog, "small-fast")
    text = (await client.get("/metrics")).text
    assert 'router_drift_alarm_active{model="small-fast",stream="success"} 1.0' in text
    assert 'router_drift_alarms_total{model="small-fast",stream="success"}' in text
    drift = (await client.get("/v1/stats")).json()["drift"]
    assert drift["raised_total"] >= 1
    alarm = next(a for a in drift["active"] if a["stream"] == "success")
    assert alarm["model"] == "small-fast"
    assert alarm["before"] > alarm["after"]
    assert "success rate dropped" in alarm["description"]


async def test_metrics_show_the_sqlite_writer_process_its_restarts_and_checkpoints(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.storage import hot_path

    monkeypatch.setattr(hot_path, "CHECKPOINT_EVERY", 2)  # before the app starts
    async with AsyncTestClient(create_app(make_settings(database_url))) as client:
        routing: RoutingService = client.app.state.routing
        writer = routing.log.writer
        if writer is None:  # PostgreSQL: no SQLite metric at all
            await client.post("/v1/route", json={"task": TASK})
            assert "router_sqlite_" not in (await client.get("/metrics")).text
            return
        # A writer process that dies is replaced: the route after it is committed by another.
        first = writer.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        for _ in range(1000):
            if not writer.running:
                break
            await asyncio.sleep(0.01)
        for _ in range(2):
            response = await client.post("/v1/route", json={"task": TASK})
            assert response.status_code == 200, response.text
        assert writer.pid not in (None, first)
        # The checkpoint runs in its thread after the second commit; /metrics reports it.
        for _ in range(200):
            text = (await client.get("/metrics")).text
            if 'router_sqlite_checkpoints_total{complete="true"} 1.0' in text:
                break
            await asyncio.sleep(0.05)

    def value(prefix: str) -> float:
        line = next(line for line in text.splitlines() if line.startswith(prefix))
        return float(line.split()[-1])

    assert value("router_sqlite_writer_process_transactions_total") >= 2
    assert value("router_sqlite_writer_process_starts_total") == 2
    assert 'router_sqlite_lookups_total{connection="async_engine"} 0.0' in text
    assert 'router_sqlite_checkpoints_total{complete="true"} 1.0' in text
    assert 'router_sqlite_checkpoints_total{complete="false"} 0.0' in text
    assert value("router_sqlite_wal_frames") > 0


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_count_requests_by_route_template_decisions_rewards_and_delays(
    client: AsyncTestClient[Any],
) -> None:
    decisions = []
    for i in range(3):
        response = await client.post("/v1/route", json={
            "task": {**TASK, "description": f"task {i}"}, "request_id": f"r{i}"})
        assert response.status_code == 200, response.text
        decisions.append(response.json())
    # A replayed request_id answers the logged decision: no new decision is counted.
    assert (await client.post("/v1/route", json={
        "task": {**TASK, "description": "task 0"}, "request_id": "r0"})).status_code == 200
    first, second, _ = decisions
    feedback = [{"decision_id": first["decision_id"], "outcome": "approved"},
                {"decision_id": second["decision_id"], "outcome": "rejected", "reward": 0.25}]
    for body in [*feedback, feedback[0]]:  # the last one is a duplicate: no new outcome
        assert (await client.post("/v1/feedback", json=body)).status_code == 200
    assert (await client.get(f"/v1/decisions/{first['decision_id']}")).status_code == 200
    assert (await client.get("/v1/decisions/0123456789abcdef")).status_code == 404
    assert (await client.get("/no/such/path")).status_code == 404
    assert (await client.request("BREW", "/v1/route")).status_code == 405

    scrape = await client.get("/metrics")
    assert scrape.status_code == 200
    found = samples(scrape.text)
    requests = "router_http_request_duration_seconds_count"
    assert value(found, requests, method="POST", route="/v1/route", status="200") == 4
    assert value(found, requests, method="POST", route="/v1/feedback", status="200") == 3
    template = "/v1/decisions/{decision_id}"
    assert value(found, requests, method="GET", route=template, status="200") == 1
    assert value(found, requests, method="GET", route=template, status="404") == 1
    assert value(found, requests, method="GET", route="(unmatched)", status="404") == 1
    assert value(found, requests, method="OTHER", route="(unmatched)", status="405") == 1
    # Routes are labelled by their template: no decision id (or any raw path) is a label.
    routes = {dict(labels)["route"] for name, labels in found if name == requests}
    assert routes == {"/v1/route", "/v1/feedback", template, "(unmatched)"}
    buckets = {dict(labels)["le"]: v for (name, labels), v in found.items()
               if name == "router_http_request_duration_seconds_bucket"
               and dict(labels)["route"] == "/v1/route"}
    assert buckets["+Inf"] == 4

    chosen = Counter((d["model"], d["template"]) for d in decisions)
    counted = {(dict(labels)["model"], dict(labels)["template"]): v
               for (name, labels), v in found.items() if name == "router_decisions_total"}
    assert counted == chosen

    rewards: dict[str, list[float]] = {}
    for decision, reward in ((first, 1.0), (second, 0.25)):  # "approved": the profile's 1.0
        rewards.setdefault(decision["model"], []).append(reward)
    for model, observed in rewards.items():
        assert value(found, "router_reward_count", model=model) == len(observed)
        assert value(found, "router_reward_sum", model=model) == pytest.approx(sum(observed))
        assert value(found, "router_feedback_delay_seconds_count", model=model) == len(observed)
        delay = value(found, "router_feedback_delay_seconds_sum", model=model)
        assert 0 <= delay < 60


async def test_metrics_without_requests_list_the_families_and_process_metrics(
    client: AsyncTestClient[Any],
) -> None:
    text = (await client.get("/metrics")).text
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"router_http_request_duration_seconds", "router_decisions", "router_reward",
            "router_feedback_delay_seconds", "router_learned_outcomes",
            "process_cpu_seconds"} <= names
