"""Two service instances on one database converge: each tails the other's outcomes."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar.testing import AsyncTestClient

from router.app import create_app
from tests.support import make_settings


def body(i: int) -> dict[str, Any]:
    return {"task": {"type": "backend", "language": "python", "description": f"task number {i}"}}


async def probe(client: AsyncTestClient[Any], name: str) -> list[float]:
    decision = (await client.post("/v1/route", json=body(0) | {"request_id": name})).json()
    view = (await client.get(f"/v1/decisions/{decision['decision_id']}")).json()
    probabilities: list[float] = view["probabilities"]
    return probabilities


async def test_instances_on_one_database_learn_the_same(database_url: str) -> None:
    settings = make_settings(database_url, ROUTER__LEARNING__TAIL_INTERVAL_S="0.05")
    async with (
        AsyncTestClient(create_app(settings)) as first,
        AsyncTestClient(create_app(settings)) as second,
    ):
        for i in range(30):
            client = first if i % 3 else second
            decision = (await client.post("/v1/route", json=body(i))).json()
            outcome = "approved" if decision["temperature"] <= 0.2 else "rejected"
            feedback = {"decision_id": decision["decision_id"], "outcome": outcome}
            response = await client.post("/v1/feedback", json=feedback)
            assert response.status_code == 200
            # An outcome is learned at once when it is the next one this instance has not
            # learned; after the other instance's, the tail learns it (learned: false).
        for _ in range(100):
            ready = [(await c.get("/ready")).json() for c in (first, second)]
            if all(r["learned_outcomes"] == 30 for r in ready):
                break
            await asyncio.sleep(0.05)
        assert [r["learned_outcomes"] for r in ready] == [30, 30]
        # Different request ids, so two fresh decisions: their logged vectors must agree.
        assert await probe(first, "probe-a") == await probe(second, "probe-b")
