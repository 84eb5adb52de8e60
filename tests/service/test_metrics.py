"""``GET /metrics`` and the drift part of ``GET /v1/stats``: what the online policy knows,
exposed in Prometheus text and JSON."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import numpy as np
import pytest
from litestar.testing import AsyncTestClient

from router.app import create_app
from router.services.routing import RoutingService
from tests.support import make_settings

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
    rng = np.random.default_rng(0)
    for i in range(3000):  # until the first alarm (it lasts `hold` more outcomes of the model)
        rate = 0.8 if i < 1500 else 0.2
        drift = routing.learner.policies.for_tenant("default").drift
        if drift.update("small-fast", float(rng.random() < rate), None):
            break
    text = (await client.get("/metrics")).text
    assert 'router_drift_alarm_active{model="small-fast",stream="success"} 1.0' in text
    assert 'router_drift_alarms_total{model="small-fast",stream="success"}' in text
    drift = (await client.get("/v1/stats")).json()["drift"]
    assert drift["raised_total"] >= 1
    alarm = drift["active"][0]
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
