"""The HTTP contract of DESIGN.md through create_app on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from router.app import create_app
from tests.support import make_settings

TASK = {"type": "backend", "language": "python", "description": "Build a REST API with JWT auth"}


def route_body(**extra: Any) -> dict[str, Any]:
    return {"task": dict(TASK), **extra}


async def test_route_returns_a_complete_decision(client: AsyncTestClient[Any]) -> None:
    response = await client.post(
        "/v1/route",
        json=route_body(
            context={"project_id": "p1", "agent": "implementation", "rag": {"examples": 2}},
            features={"priority": "high", "loc_budget": 300, "urgent": True},
        ),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["decision_id"]) == 32
    assert 0.0 < body["propensity"] <= 1.0
    assert body["policy"]["name"] == "vw-cb-explore-adf"
    predictions = body["predictions"]
    low, high = predictions["time_interval_s"]
    assert low < predictions["time_s"] < high
    assert predictions["cost_usd"] > 0 or body["model"] == "local-8b"
    assert predictions["source"] == "prior"
    assert body["risk"]["level"] in {"low", "medium", "high"}
    assert len(body["alternatives"]) == 3
    chosen = (body["model"], body["temperature"], body["template"])
    assert chosen not in {
        (a["model"], a["temperature"], a["template"]) for a in body["alternatives"]
    }


async def test_same_request_id_returns_same_decision(client: AsyncTestClient[Any]) -> None:
    first = await client.post("/v1/route", json=route_body(request_id="req-1"))
    second = await client.post("/v1/route", json=route_body(request_id="req-1"))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    other = await client.post("/v1/route", json=route_body(request_id="req-2"))
    assert other.json()["decision_id"] != first.json()["decision_id"]


async def test_request_id_reused_with_other_body_is_a_conflict(
    client: AsyncTestClient[Any],
) -> None:
    await client.post("/v1/route", json=route_body(request_id="req-x"))
    changed = route_body(request_id="req-x", objective="cost")
    response = await client.post("/v1/route", json=changed)
    assert response.status_code == 409
    assert response.json()["field"] == "request_id"


async def test_feedback_is_stored_and_learned_once(client: AsyncTestClient[Any]) -> None:
    decision = (await client.post("/v1/route", json=route_body())).json()
    feedback = {"decision_id": decision["decision_id"], "outcome": "approved", "quality": 9.0}
    first = await client.post("/v1/feedback", json=feedback)
    assert first.status_code == 200, first.text
    assert first.json()["duplicate"] is False
    assert first.json()["learned"] is True
    again = await client.post("/v1/feedback", json={**feedback, "outcome": "rejected"})
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["reward"] == first.json()["reward"]
    assert again.json()["sequence"] == first.json()["sequence"]
    ready = (await client.get("/ready")).json()
    assert ready["learned_outcomes"] == ready["log_outcomes"] == 1
    view = (await client.get(f"/v1/decisions/{decision['decision_id']}")).json()
    assert view["outcome"]["outcome"] == "approved"
    assert view["outcome"]["quality"] == 9.0


async def test_explicit_reward_overrides_profile(client: AsyncTestClient[Any]) -> None:
    decision = (await client.post("/v1/route", json=route_body())).json()
    response = await client.post(
        "/v1/feedback",
        json={"decision_id": decision["decision_id"], "outcome": "rejected", "reward": 0.75},
    )
    assert response.json()["reward"] == 0.75
    assert response.json()["reward_source"] == "explicit"


async def test_reward_profile_follows_objective(client: AsyncTestClient[Any]) -> None:
    rewards = {}
    for objective in ("quality", "cost"):
        decision = (await client.post("/v1/route", json=route_body(objective=objective))).json()
        feedback = {
            "decision_id": decision["decision_id"],
            "outcome": "approved",
            "quality": 10.0,
            "cost_usd": 0.05,
            "generation_time_s": 30.0,
        }
        response = (await client.post("/v1/feedback", json=feedback)).json()
        assert response["reward_source"] == f"profile:{objective}"
        rewards[objective] = response["reward"]
    assert rewards["quality"] > rewards["cost"]


async def test_decision_view_has_logged_probabilities(client: AsyncTestClient[Any]) -> None:
    decision = (await client.post("/v1/route", json=route_body())).json()
    view = await client.get(f"/v1/decisions/{decision['decision_id']}")
    assert view.status_code == 200
    body = view.json()
    assert abs(sum(body["probabilities"]) - 1.0) < 1e-9
    assert len(body["allowed_actions"]) == len(body["probabilities"])
    chosen = f"{decision['model']}|{decision['temperature']:g}|{decision['template']}"
    position = body["allowed_actions"].index(chosen)
    assert body["probabilities"][position] == pytest.approx(decision["propensity"])
    assert body["response"] == decision


async def test_language_restricted_templates_are_respected(client: AsyncTestClient[Any]) -> None:
    body = {"task": {"type": "query", "language": "sql", "description": "monthly revenue"}}
    decision = (await client.post("/v1/route", json=body)).json()
    view = (await client.get(f"/v1/decisions/{decision['decision_id']}")).json()
    templates = {action.split("|")[2] for action in view["allowed_actions"]}
    assert "sql-focused" in templates
    assert "python-typed" not in templates
    assert "ts-strict" not in templates


async def test_constraints_restrict_the_choice(client: AsyncTestClient[Any]) -> None:
    body = route_body(
        constraints={"models": ["small-fast", "local-8b"], "temperatures": [0.0, 0.2]}
    )
    for _ in range(5):
        decision = (await client.post("/v1/route", json=body)).json()
        assert decision["model"] in {"small-fast", "local-8b"}
        assert decision["temperature"] in {0.0, 0.2}


async def test_health_ready_and_openapi(client: AsyncTestClient[Any]) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["catalog_actions"] == 160
    schema = (await client.get("/schema/openapi.json")).json()
    assert {"/v1/route", "/v1/feedback", "/v1/decisions/{decision_id}"} <= set(schema["paths"])


async def test_tenants_are_isolated(database_url: str) -> None:
    settings = make_settings(
        database_url,
        ROUTER__AUTH__API_KEYS='{"key-of-acme-123": "acme", "key-of-globex-9": "globex"}',
    )
    async with AsyncTestClient(create_app(settings)) as client:
        missing = await client.post("/v1/route", json=route_body())
        assert missing.status_code == 401
        assert missing.headers["content-type"].startswith("application/problem+json")
        wrong = await client.post(
            "/v1/route", json=route_body(), headers={"Authorization": "Bearer nope-nope-nope"}
        )
        assert wrong.status_code == 401
        acme = {"Authorization": "Bearer key-of-acme-123"}
        globex = {"X-API-Key": "key-of-globex-9"}
        decision = (await client.post("/v1/route", json=route_body(), headers=acme)).json()
        decision_id = decision["decision_id"]
        assert (await client.get(f"/v1/decisions/{decision_id}", headers=globex)).status_code == 404
        stolen = await client.post(
            "/v1/feedback", json={"decision_id": decision_id, "outcome": "rejected"}, headers=globex
        )
        assert stolen.status_code == 404
        own = await client.post(
            "/v1/feedback", json={"decision_id": decision_id, "outcome": "approved"}, headers=acme
        )
        assert own.status_code == 200
        # The same request_id in two tenants makes two decisions.
        a = await client.post("/v1/route", json=route_body(request_id="r"), headers=acme)
        b = await client.post("/v1/route", json=route_body(request_id="r"), headers=globex)
        assert a.json()["decision_id"] != b.json()["decision_id"]
