"""Tenants are sealed (DESIGN.md rule 7): one tenant's feedback never moves another tenant's
choice probabilities, a restart restores each tenant's own state, and ``GET /v1/stats`` shows
only the caller's figures, read without scanning the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import event

from router.app import create_app
from router.services.routing import RoutingService
from router.settings import Settings
from tests.support import collapse_model, make_settings

KEY_A, KEY_B = "key-of-tenant-a-0001", "key-of-tenant-b-0001"
A = {"X-API-Key": KEY_A}
B = {"X-API-Key": KEY_B}
# No project: a probe leaves no trace in the historical features.
PROBE = {"task": {"type": "backend", "language": "python",
                  "description": "Add a cached REST endpoint with retries"}}


def two_tenants(database_url: str, **environ: str) -> Settings:
    return make_settings(
        database_url,
        ROUTER__AUTH__API_KEYS=f'{{"{KEY_A}": "team-a", "{KEY_B}": "team-b"}}',
        **environ,
    )


async def probabilities(client: AsyncTestClient[Any], headers: dict[str, str]) -> list[float]:
    """The full probability vector the caller's state gives the fixed probe request."""
    decision = await client.post("/v1/route", json=PROBE, headers=headers)
    assert decision.status_code == 200, decision.text
    view = await client.get(f"/v1/decisions/{decision.json()['decision_id']}", headers=headers)
    vector: list[float] = view.json()["probabilities"]
    return vector


async def approve_all(client: AsyncTestClient[Any], headers: dict[str, str], n: int,
                      prefix: str) -> None:
    """``n`` decisions of the probe's kind, each approved with reward 1."""
    for i in range(n):
        body = PROBE | {"request_id": f"{prefix}-{i}"}
        decision = await client.post("/v1/route", json=body, headers=headers)
        assert decision.status_code == 200, decision.text
        feedback = await client.post("/v1/feedback", headers=headers, json={
            "decision_id": decision.json()["decision_id"], "outcome": "approved",
            "reward": 1.0, "quality": 9.0, "cost_usd": 0.01})
        assert feedback.status_code == 200, feedback.text
        assert feedback.json()["learned"] is True


async def test_a_tenants_feedback_never_moves_another_tenants_probabilities(
    database_url: str,
) -> None:
    async with AsyncTestClient(create_app(two_tenants(database_url))) as client:
        before = await probabilities(client, B)
        await approve_all(client, A, 40, "a")
        after = await probabilities(client, B)
        # A's own state learned: its vector moved away from B's.
        own = await probabilities(client, A)
    assert after == before
    assert max(abs(x - y) for x, y in zip(own, before, strict=True)) > 0.05


async def test_shared_learning_is_a_configuration_choice(database_url: str) -> None:
    settings = two_tenants(database_url, ROUTER__LEARNING__SHARE_ACROSS_TENANTS="true")
    async with AsyncTestClient(create_app(settings)) as client:
        before = await probabilities(client, B)
        await approve_all(client, A, 40, "a")
        after = await probabilities(client, B)
        stats_b = (await client.get("/v1/stats", headers=B)).json()
    assert max(abs(x - y) for x, y in zip(after, before, strict=True)) > 0.05
    # Shared learning, but each tenant's statistics stay its own.
    assert stats_b["outcomes"] == stats_b["learned_outcomes"] == 0


async def test_a_restart_restores_each_tenants_own_state(database_url: str) -> None:
    settings = two_tenants(database_url)
    async with AsyncTestClient(create_app(settings)) as client:
        await approve_all(client, A, 30, "a")
        await approve_all(client, B, 5, "b")
        vectors = [await probabilities(client, h) for h in (A, B)]
    assert vectors[0] != vectors[1]
    async with AsyncTestClient(create_app(settings)) as client:
        routing: RoutingService = client.app.state.routing
        assert routing.learner.restored_seq == 35  # from the checkpoint, not a re-fold
        assert [await probabilities(client, h) for h in (A, B)] == vectors
        stats = [(await client.get("/v1/stats", headers=h)).json() for h in (A, B)]
    # Decisions include the probes: two per tenant.
    assert [(s["decisions"], s["outcomes"], s["learned_outcomes"]) for s in stats] == [
        (32, 30, 30), (7, 5, 5)]


async def test_stats_show_only_the_callers_figures(database_url: str) -> None:
    async with AsyncTestClient(create_app(two_tenants(database_url))) as client:
        await approve_all(client, B, 2, "b")
        stats_b = (await client.get("/v1/stats", headers=B)).json()
        await approve_all(client, A, 12, "a")
        assert (await client.get("/v1/stats", headers=B)).json() == stats_b
        routing: RoutingService = client.app.state.routing
        # An alarm in A's state (as a collapse of A's outcomes would raise) is A's alone.
        collapse_model(routing.learner.policies.for_tenant("team-a"), routing.catalog,
                       "small-fast")
        assert (await client.get("/v1/stats", headers=B)).json() == stats_b
        stats_a = (await client.get("/v1/stats", headers=A)).json()
    assert (stats_b["decisions"], stats_b["outcomes"], stats_b["learned_outcomes"]) == (2, 2, 2)
    assert stats_b["drift"] == {"active": [], "raised_total": 0}
    assert (stats_a["decisions"], stats_a["outcomes"], stats_a["learned_outcomes"]) == (
        12, 12, 12)
    assert stats_a["by_outcome"] == {"approved": 12}
    assert stats_a["by_task_type"] == {"backend": 12}
    assert stats_a["averages"]["success_rate"] == 1.0
    assert stats_a["averages"]["cost_usd"] == 0.01
    assert {alarm["model"] for alarm in stats_a["drift"]["active"]} == {"small-fast"}


async def stats_statements(client: AsyncTestClient[Any]) -> list[str]:
    """SQL statements one ``GET /v1/stats`` issues."""
    routing: RoutingService = client.app.state.routing
    issued: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        issued.append(statement)

    engine = routing.log.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = await client.get("/v1/stats", headers=B)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 200, response.text
    return issued


@pytest.mark.parametrize("rows", [200])
async def test_stats_cost_the_same_with_an_empty_or_a_full_log(database_url: str,
                                                                rows: int) -> None:
    # Background pollers out of the way, so that only the handler's statements are counted.
    settings = two_tenants(database_url, ROUTER__LEARNING__TAIL_INTERVAL_S="60",
                           ROUTER__LEARNING__POLICY_POLL_INTERVAL_S="3600",
                           ROUTER__BATCH__POLL_INTERVAL_S="3600")
    async with AsyncTestClient(create_app(settings)) as client:
        empty = await stats_statements(client)
        await approve_all(client, B, rows, "b")
        full = await stats_statements(client)
        assert (await client.get("/v1/stats", headers=B)).json()["decisions"] == rows
    assert len(full) == len(empty) == 1
    # One primary-key look-up of the caller's row: neither decisions nor outcomes are read.
    assert "FROM tenants" in full[0]
    assert "decisions" not in full[0].partition("FROM")[2]


async def test_a_promoted_configuration_serves_every_tenant_from_its_own_outcomes(
    tmp_path: Path,
) -> None:
    settings = two_tenants(f"sqlite+aiosqlite:///{tmp_path}/switch.db")
    async with AsyncTestClient(create_app(settings)) as client:
        await approve_all(client, A, 12, "a")
        await approve_all(client, B, 3, "b")
        routing: RoutingService = client.app.state.routing
        promoted = msgspec.structs.replace(settings.bandit, exploration="epsilon", epsilon=0.3)
        assert await routing.learner.switch_policy(promoted)
        policies = routing.learner.policies
        assert policies.settings == promoted
        assert [policies.for_tenant(t).learned for t in ("team-a", "team-b")] == [12, 3]
        vectors = [await probabilities(client, h) for h in (A, B)]
    assert vectors[0] != vectors[1]
