"""The learner's fold over the outcome log does not depend on a gap-free sequence.

PostgreSQL hands out ``outcomes.seq`` before commit: a rolled-back insert leaves a number that no
row will ever hold. Duplicate feedback must not take a number, a dead number must be passed over
as soon as no transaction that could still commit it is running (well under a second), a number
held by a transaction still in flight must not be passed over, and ``/ready`` counts outcomes,
not sequence numbers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg
from litestar.testing import AsyncTestClient

from router.app import create_app
from tests.support import make_settings

TASK = {"type": "backend", "language": "python", "description": "Build a REST API with JWT auth"}


async def decide(client: AsyncTestClient[Any]) -> str:
    response = await client.post("/v1/route", json={"task": TASK})
    assert response.status_code == 200, response.text
    decision_id: str = response.json()["decision_id"]
    return decision_id


async def feedback(client: AsyncTestClient[Any], decision_id: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/feedback", json={"decision_id": decision_id, "outcome": "approved"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def ready_when(
    client: AsyncTestClient[Any], expected: dict[str, int], within_s: float
) -> tuple[dict[str, Any], float]:
    """Poll /ready until its counts are ``expected`` or ``within_s`` passed."""
    started = time.monotonic()
    while True:
        ready: dict[str, Any] = (await client.get("/ready")).json()
        elapsed = time.monotonic() - started
        if all(ready[k] == v for k, v in expected.items()) or elapsed > within_s:
            return ready, elapsed
        await asyncio.sleep(0.02)


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def test_duplicate_feedback_takes_no_sequence_number_and_stalls_nothing(
    database_url: str,
) -> None:
    async with AsyncTestClient(create_app(make_settings(database_url))) as client:
        first, second = await decide(client), await decide(client)
        acknowledged = await feedback(client, first)
        assert acknowledged["learned"] is True
        for _ in range(3):
            again = await feedback(client, first)
            assert again["duplicate"] is True
            assert again["sequence"] == acknowledged["sequence"]
        started = time.monotonic()
        following = await feedback(client, second)
        assert time.monotonic() - started < 1.0
        assert following["sequence"] == acknowledged["sequence"] + 1
        assert following["learned"] is True
        ready = (await client.get("/ready")).json()
        assert (ready["learned_outcomes"], ready["log_outcomes"], ready["behind_outcomes"]) == (
            2, 2, 0
        )


async def test_a_dead_sequence_number_is_passed_over_within_a_second(postgres_url: str) -> None:
    async with AsyncTestClient(create_app(make_settings(postgres_url))) as client:
        decision_id = await decide(client)
        conn = await asyncpg.connect(asyncpg_dsn(postgres_url))
        try:  # what a rolled-back insert leaves behind
            await conn.fetchval("SELECT nextval('outcomes_seq_seq')")
        finally:
            await conn.close()
        acknowledged = await feedback(client, decision_id)
        assert acknowledged["sequence"] == 2
        ready, elapsed = await ready_when(
            client, {"learned_outcomes": 1, "log_outcomes": 1, "behind_outcomes": 0}, 3.0
        )
        assert (ready["learned_outcomes"], ready["log_outcomes"], ready["behind_outcomes"]) == (
            1, 1, 0
        )
        assert elapsed < 1.0


async def test_a_number_held_by_a_running_transaction_is_waited_for(postgres_url: str) -> None:
    async with AsyncTestClient(create_app(make_settings(postgres_url))) as client:
        slow_decision, fast_decision = await decide(client), await decide(client)
        conn = await asyncpg.connect(asyncpg_dsn(postgres_url))
        try:
            transaction = conn.transaction()
            await transaction.start()
            held = await conn.fetchval(
                "INSERT INTO outcomes (decision_id, tenant_id, created_at, verdict, "
                "regenerations, reward, reward_source) "
                "VALUES ($1, 'default', now(), 'approved', 0, 1.0, 'explicit') RETURNING seq",
                slow_decision,
            )
            acknowledged = await feedback(client, fast_decision)
            assert acknowledged["sequence"] == held + 1
            assert acknowledged["learned"] is False  # not next: the tail learns it
            await asyncio.sleep(1.5)  # six tail passes: the open transaction keeps its number
            ready = (await client.get("/ready")).json()
            assert (ready["learned_outcomes"], ready["log_outcomes"]) == (0, 1)
            assert ready["behind_outcomes"] == 1
            await transaction.commit()
        finally:
            await conn.close()
        ready, elapsed = await ready_when(
            client, {"learned_outcomes": 2, "log_outcomes": 2, "behind_outcomes": 0}, 3.0
        )
        assert (ready["learned_outcomes"], ready["log_outcomes"]) == (2, 2)
        assert elapsed < 1.0
        assert (await client.get("/metrics")).text.count("router_learned_outcomes 2.0") == 1
