"""``GET /metrics`` and the drift part of ``GET /v1/stats``: what the online policy knows,
exposed in Prometheus text and JSON."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

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


@pytest.mark.parametrize("writer_process", ["true", "false"])
async def test_metrics_show_how_sqlite_ran_the_hot_path_and_its_checkpoints(
    database_url: str, writer_process: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.storage import inline_sqlite

    monkeypatch.setattr(inline_sqlite, "CHECKPOINT_EVERY", 2)  # before the app starts
    settings = make_settings(database_url, ROUTER__STORAGE__WRITER_PROCESS=writer_process)
    async with AsyncTestClient(create_app(settings)) as client:
        routing: RoutingService = client.app.state.routing
        if routing.log.inline is None:  # PostgreSQL: no SQLite metric at all
            await client.post("/v1/route", json={"task": TASK})
            assert "router_sqlite_" not in (await client.get("/metrics")).text
            return
        assert (routing.log.process is not None) == (writer_process == "true")
        for _ in range(2):
            response = await client.post("/v1/route", json={"task": TASK})
            assert response.status_code == 200, response.text
        # The checkpoint runs in its thread after the second commit; /metrics reports it.
        for _ in range(200):
            text = (await client.get("/metrics")).text
            if 'router_sqlite_checkpoints_total{complete="true"} 1.0' in text:
                break
            await asyncio.sleep(0.05)

    def value(prefix: str) -> float:
        line = next(line for line in text.splitlines() if line.startswith(prefix))
        return float(line.split()[-1])

    inline_writes = value('router_sqlite_inline_transactions_total{kind="write"}')
    if writer_process == "true":
        assert inline_writes == 0
        assert value("router_sqlite_writer_process_transactions_total") >= 2
    else:
        assert inline_writes >= 2
        assert "router_sqlite_writer_process_transactions_total" not in text
    assert "router_sqlite_busy_fallbacks_total 0.0" in text
    assert 'router_sqlite_checkpoints_total{complete="true"} 1.0' in text
    assert 'router_sqlite_checkpoints_total{complete="false"} 0.0' in text
    assert value("router_sqlite_wal_frames") > 0
