"""Feedback code is measured off the event loop, after the duplicate check, within a budget
(issue 16 finding 7a), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from router.app import create_app
from router.services.routing import RoutingService
from router.storage.models import Outcome
from tests.support import make_settings

TASK = {"type": "backend", "language": "python", "description": "Build a REST API with JWT auth"}
FUNCTION = '''
def handler_{i}(request: dict, retries: int = 3) -> str:
    """Handle one request."""
    for attempt in range(retries):
        if request.get("ok") and attempt > 0:
            return "done"
    return "failed"
'''
FUNCTIONS = 900
# 200,000 characters of valid Python: FUNCTIONS functions, then a comment to fill up.
_BODY = "".join(FUNCTION.format(i=i) for i in range(FUNCTIONS))
BIG_CODE = _BODY + "#" * (200_000 - len(_BODY))


async def stored_code_metrics(database_url: str, decision_id: str) -> Any:
    # An engine of the test's own: the app's runs on the test client's event loop.
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(
                select(Outcome.code_metrics).where(Outcome.decision_id == decision_id)
            )
    finally:
        await engine.dispose()


async def post_feedback(client: AsyncTestClient[Any], code: str) -> tuple[str, Any]:
    decision = await client.post("/v1/route", json={"task": TASK})
    assert decision.status_code == 200, decision.text
    decision_id = decision.json()["decision_id"]
    body = {"decision_id": decision_id, "outcome": "approved", "code": code}
    response = await client.post("/v1/feedback", json=body)
    assert response.status_code == 200, response.text
    return decision_id, body


async def test_duplicate_feedback_never_measures_its_code(database_url: str) -> None:
    async with AsyncTestClient(create_app(make_settings(database_url))) as client:
        routing: RoutingService = client.app.state.routing
        decision_id, body = await post_feedback(client, BIG_CODE)
        metrics = await stored_code_metrics(database_url, decision_id)
        assert metrics is not None
        assert (metrics["method"], metrics["functions"]) == ("python-ast", FUNCTIONS)
        assert routing.code_metrics.submitted == 1
        for _ in range(3):
            again = await client.post("/v1/feedback", json=body)
            assert again.status_code == 200
            assert again.json()["duplicate"] is True
        assert routing.code_metrics.submitted == 1


async def test_code_over_the_size_budget_is_stored_without_metrics(database_url: str) -> None:
    settings = make_settings(database_url, ROUTER__CODE_METRICS__MAX_CHARS="1000")
    async with AsyncTestClient(create_app(settings)) as client:
        routing: RoutingService = client.app.state.routing
        decision_id, _ = await post_feedback(client, BIG_CODE)
        assert await stored_code_metrics(database_url, decision_id) is None
        assert routing.code_metrics.submitted == 0
        small_id, _ = await post_feedback(client, "def f(x):\n    return x\n")
        small = await stored_code_metrics(database_url, small_id)
        assert small is not None
        assert small["functions"] == 1


async def test_a_measurement_over_the_time_budget_is_given_up(database_url: str) -> None:
    # Starting the worker process alone takes longer than a millisecond.
    settings = make_settings(database_url, ROUTER__CODE_METRICS__TIMEOUT_S="0.001")
    async with AsyncTestClient(create_app(settings)) as client:
        decision_id, _ = await post_feedback(client, BIG_CODE)
        assert await stored_code_metrics(database_url, decision_id) is None
