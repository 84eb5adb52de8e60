"""Bad input gets a 4xx problem+json naming the field, and never changes stored data."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from learners.context import MAX_FEATURES

TASK = {"type": "backend", "language": "python", "description": "Build a REST API"}


def with_task(**task: Any) -> dict[str, Any]:
    return {"task": {**TASK, **task}}


ROUTE_CASES: list[tuple[str, bytes | dict[str, Any], int, str]] = [
    ("unknown top-level field", {**with_task(), "colour": "red"}, 422, "colour"),
    ("unknown task field", with_task(priority=1), 422, "task.priority"),
    ("missing description", {"task": {"type": "x", "language": "python"}}, 422, "task"),
    ("wrong type", with_task(type=3), 422, "task.type"),
    ("empty language", with_task(language=""), 422, "task.language"),
    ("description too long", with_task(description="x" * 20_001), 422, "task.description"),
    ("too many requirements", with_task(requirements=["r"] * 51), 422, "task.requirements"),
    (
        "too many features",
        {**with_task(), "features": {f"f{i}": i for i in range(MAX_FEATURES + 1)}},
        422,
        "features",
    ),
    ("bad feature name", {**with_task(), "features": {"a b": 1}}, 422, "features"),
    # msgspec elides dict keys in its error path, so the field reads "features[...]".
    ("huge feature value", {**with_task(), "features": {"x": 1e13}}, 422, "features[...]"),
    (
        "rag similarity above 1",
        {**with_task(), "context": {"rag": {"avg_similarity": 1.5}}},
        422,
        "context.rag.avg_similarity",
    ),
    (
        "unknown model",
        {**with_task(), "constraints": {"models": ["small-fast", "gpt-x"]}},
        422,
        "constraints.models[1]",
    ),
    (
        "unknown template",
        {**with_task(), "constraints": {"templates": ["nope"]}},
        422,
        "constraints.templates[0]",
    ),
    (
        "temperature not in catalog",
        {**with_task(), "constraints": {"temperatures": [0.3]}},
        422,
        "constraints.temperatures[0]",
    ),
    (
        "negative budget",
        {**with_task(), "constraints": {"max_cost_usd": -1}},
        422,
        "constraints.max_cost_usd",
    ),
    (
        "no action left",
        {**with_task(), "constraints": {"models": ["frontier-large"], "max_cost_usd": 1e-6}},
        422,
        "constraints",
    ),
    ("unknown objective", {**with_task(), "objective": "speed"}, 422, "objective"),
    ("request_id too long", {**with_task(), "request_id": "r" * 129}, 422, "request_id"),
    ("not an object", b"[1, 2]", 422, "(body)"),
    ("malformed JSON", b'{"task": ', 400, "(body)"),
    (
        "NaN literal",
        b'{"task": {"type": "x", "language": "py", "description": NaN}}',
        400,
        "(body)",
    ),
    (
        "infinite number",
        b'{"task": {"type": "x", "language": "py", "description": "d"}, "features": {"x": 1e999}}',
        400,
        "(body)",
    ),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "field"), ROUTE_CASES, ids=[c[0] for c in ROUTE_CASES]
)
async def test_bad_route_request(
    client: AsyncTestClient[Any], case: str, body: bytes | dict[str, Any], status: int, field: str
) -> None:
    if isinstance(body, bytes):
        response = await client.post(
            "/v1/route", content=body, headers={"content-type": "application/json"}
        )
    else:
        response = await client.post("/v1/route", json=body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].startswith("urn:adaptive-router:problem:")
    assert problem["field"] == field, problem
    assert problem["detail"]


FEEDBACK_CASES: list[tuple[str, dict[str, Any], int, str]] = [
    ("quality above 10", {"outcome": "approved", "quality": 10.5}, 422, "quality"),
    ("quality below 0", {"outcome": "approved", "quality": -0.1}, 422, "quality"),
    ("negative cost", {"outcome": "approved", "cost_usd": -0.01}, 422, "cost_usd"),
    ("negative time", {"outcome": "approved", "generation_time_s": -2}, 422, "generation_time_s"),
    ("negative tokens", {"outcome": "approved", "tokens": -5}, 422, "tokens"),
    ("reward above 1", {"outcome": "approved", "reward": 1.01}, 422, "reward"),
    ("reward below 0", {"outcome": "approved", "reward": -0.5}, 422, "reward"),
    ("unknown outcome", {"outcome": "great"}, 422, "outcome"),
    ("unknown field", {"outcome": "approved", "stars": 5}, 422, "stars"),
    ("code too long", {"outcome": "approved", "code": "x" * 200_001}, 422, "code"),
]


@pytest.mark.parametrize(
    ("case", "extra", "status", "field"), FEEDBACK_CASES, ids=[c[0] for c in FEEDBACK_CASES]
)
async def test_bad_feedback_changes_nothing(
    client: AsyncTestClient[Any], case: str, extra: dict[str, Any], status: int, field: str
) -> None:
    decision = (await client.post("/v1/route", json=with_task())).json()
    decision_id = decision["decision_id"]
    response = await client.post("/v1/feedback", json={"decision_id": decision_id, **extra})
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    view = (await client.get(f"/v1/decisions/{decision_id}")).json()
    assert view["outcome"] is None
    assert (await client.get("/ready")).json()["log_outcomes"] == 0
    good = await client.post(
        "/v1/feedback", json={"decision_id": decision_id, "outcome": "approved"}
    )
    assert good.status_code == 200
    assert good.json()["duplicate"] is False


async def test_unknown_decision_is_404(client: AsyncTestClient[Any]) -> None:
    response = await client.post(
        "/v1/feedback", json={"decision_id": "0" * 32, "outcome": "approved"}
    )
    assert response.status_code == 404
    assert response.json()["field"] == "decision_id"
    assert (await client.get("/v1/decisions/abc")).status_code == 404


async def test_oversized_body_is_413(client: AsyncTestClient[Any]) -> None:
    response = await client.post(
        "/v1/route",
        content=b"{" + b" " * 1_100_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
