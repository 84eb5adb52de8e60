"""``GET /metrics`` and the drift part of ``GET /v1/stats``: what the online policy knows,
exposed in Prometheus text and JSON."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from litestar.testing import AsyncTestClient

from router.services.routing import RoutingService

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
        if routing.policy.drift.update("small-fast", float(rng.random() < rate), None):
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


async def test_metrics_show_how_sqlite_ran_the_hot_path_and_its_checkpoints(
    client: AsyncTestClient[Any], monkeypatch: Any
) -> None:
    from router.storage import inline_sqlite

    routing: RoutingService = client.app.state.routing
    inline = routing.log.inline
    if inline is None:  # PostgreSQL: no SQLite metric at all
        await client.post("/v1/route", json={"task": TASK})
        assert "router_sqlite_" not in (await client.get("/metrics")).text
        return
    monkeypatch.setattr(inline_sqlite, "CHECKPOINT_EVERY", 2)
    for _ in range(2):
        response = await client.post("/v1/route", json={"task": TASK})
        assert response.status_code == 200, response.text
    # The checkpoint runs in its thread after the second commit; the app's loop reports it.
    for _ in range(200):
        text = (await client.get("/metrics")).text
        if 'router_sqlite_checkpoints_total{complete="true"} 1.0' in text:
            break
        await asyncio.sleep(0.05)
    writes = next(line for line in text.splitlines()
                  if line.startswith('router_sqlite_inline_transactions_total{kind="write"}'))
    assert float(writes.split()[-1]) >= 2
    assert "router_sqlite_busy_fallbacks_total 0.0" in text
    assert 'router_sqlite_checkpoints_total{complete="true"} 1.0' in text
    assert 'router_sqlite_checkpoints_total{complete="false"} 0.0' in text
    frames = next(line for line in text.splitlines() if line.startswith("router_sqlite_wal_frames"))
    assert float(frames.split()[-1]) > 0
