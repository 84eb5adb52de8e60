"""``GET /metrics`` and the drift part of ``GET /v1/stats``: what the online policy knows,
exposed in Prometheus text and JSON."""

from __future__ import annotations

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
