"""Batch models end to end: train into the registry, serve predictions and risk factors from
the current version, pick up promotions and rollbacks without restart, stats and admin API."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from learners.batch.training import History
from offline.dataset import history_from_rows
from offline.synthetic import generate_history
from offline.world import World
from router.app import create_app
from router.server_secret import load_keyring
from router.services.promotion import train_and_register
from router.services.routing import RoutingService
from router.settings import Settings
from router.storage.database import create_engine, migrate
from router.storage.registry import ModelRegistry
from tests.support import insert_forged_version, make_settings

FAST_TRAINING = {
    "ROUTER__TRAINING__SEARCH_BUDGET_S": "0",
    "ROUTER__TRAINING__MAX_TREES": "40",
    "ROUTER__BATCH__POLL_INTERVAL_S": "0.2",
}
# The file the removed native kernel loaded from the shared temporary directory (issue 16).
OLD_KERNEL = "forest-a61cd1ea04c0c591.so"
TASK = {"type": "backend", "language": "python",
        "description": "Add a paginated REST endpoint with caching and JWT authentication"}


def _history(settings: Settings, n: int, seed: int) -> History:
    rows = generate_history(World(catalog=settings.catalog, seed=seed), n, seed=seed)
    return history_from_rows(rows, [settings.catalog])


async def _train(settings: Settings, seed: int, *, make_current: bool = True) -> str:
    """Train on a synthetic history. The success model must beat its baseline; a small
    history's template ranker may not beat popularity, and then the gate rejects the version:
    ``make_current`` promotes it anyway (through the registry) so that serving can be tested."""
    engine = create_engine(settings.storage.url)
    try:
        await migrate(engine)
        history = _history(settings, 6000, seed)

        async def load() -> History:
            return history

        report = await train_and_register(engine, settings, load_keyring(settings), load=load,
                                          source=f"seed {seed}")
        assert report.result.reports["success"].beats_baseline, report.gate.reasons
        assert (report.status == "rejected") == (not report.result.beats_baselines)
        registry = ModelRegistry(engine)
        if make_current and (await registry.current()) is None:
            await registry.promote(report.version)
    finally:
        await engine.dispose()
    return report.version


@pytest.fixture
def batch_settings(database_url: str) -> Settings:
    return make_settings(database_url, **FAST_TRAINING)


async def _route(client: AsyncTestClient[Any], **extra: Any) -> dict[str, Any]:
    body = {"task": TASK, "context": {"project_id": "proj-01", "agent": "implementation"},
            **extra}
    response = await client.post("/v1/route", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_route_serves_the_current_version_and_explains_risk(
    batch_settings: Settings,
) -> None:
    version = await _train(batch_settings, seed=5)
    async with AsyncTestClient(create_app(batch_settings)) as client:
        body = await _route(client)
        predictions = body["predictions"]
        assert predictions["source"] == f"batch:{version}"
        assert 0.0 <= predictions["success_probability"] <= 1.0
        low, high = predictions["time_interval_s"]
        assert low <= predictions["time_s"] <= high
        assert 0.0 <= predictions["complexity"] <= 10.0
        contributions = [f for f in body["risk"]["factors"] if "log-odds" in f]
        assert contributions, body["risk"]
        # Categorical contributions name the category, never its numeric code.
        categorical = ("task type", "language", "framework", "calling agent", "objective",
                       "model choice", "template choice")
        for factor in contributions:
            name, _, rest = factor.partition(" (")
            if name in categorical:
                assert not rest.split(")")[0].replace(".", "").isdigit(), factor
        logged = (await client.get(f"/v1/decisions/{body['decision_id']}")).json()
        assert logged["response"]["predictions"]["source"] == f"batch:{version}"
        models = (await client.get("/v1/models")).json()
        assert [m["status"] for m in models] == ["current"]
        assert models[0]["metrics"]["success"]["beats_baseline"] is True
        assert "templates" in models[0]["gate"]["reasons"][-1]


async def test_a_library_planted_in_a_shared_directory_is_never_loaded(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Libraries planted in world-writable directories, one where the removed native kernel was
    loaded from (``<system temp>/adaptive-router-compiled``), are never loaded while a trained
    version is trained, loaded and served."""
    shared = tmp_path / "tmp"  # this test's system temporary directory: never the real /tmp
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    planted = [shared / "adaptive-router-compiled" / OLD_KERNEL, shared / "forest-0.so"]
    for path in planted:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o777)
        path.write_bytes(b"\x7fELF planted by another user")
    loaded: list[str] = []
    recording = [True]

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if event == "ctypes.dlopen" and recording[0]:  # every ctypes.CDLL raises it
            loaded.append(str(args[0]))

    sys.addaudithook(audit)  # hooks cannot be removed: ``recording`` turns this one off
    try:
        settings = make_settings(database_url, **FAST_TRAINING)
        version = await _train(settings, seed=5)
        async with AsyncTestClient(create_app(settings)) as client:
            for i in range(10):  # long enough for a background loader to have run
                body = await _route(client, request_id=f"planted-{i}")
                assert body["predictions"]["source"] == f"batch:{version}"
                await asyncio.sleep(0.1)
    finally:
        recording[0] = False
    assert [name for name in loaded if str(shared) in name] == []


async def test_promotion_and_rollback_reach_a_running_service(batch_settings: Settings) -> None:
    async with AsyncTestClient(create_app(batch_settings)) as client:
        assert (await _route(client))["predictions"]["source"] in {"prior", "online"}
        first = await _train(batch_settings, seed=5)
        await asyncio.sleep(0.6)  # the service polls the registry every 0.2 s
        assert (await _route(client))["predictions"]["source"] == f"batch:{first}"

        await asyncio.sleep(1.1)  # version names carry the second they were trained in
        second = await _train(batch_settings, seed=6, make_current=False)
        listed = {m["version"]: m["status"] for m in (await client.get("/v1/models")).json()}
        if listed[second] != "current":  # the gate may keep the first: promote by hand
            refused = await client.post(f"/v1/admin/models/{second}/promote", json={})
            assert refused.status_code in {200, 409}, refused.text

        forced = await client.post(f"/v1/admin/models/{second}/promote", json={"force": True})
        assert forced.status_code == 200, forced.text
        assert (await _route(client))["predictions"]["source"] == f"batch:{second}"

        rolled = await client.post("/v1/admin/models/rollback")
        assert rolled.status_code == 200, rolled.text
        assert rolled.json()["version"] == first
        assert (await _route(client))["predictions"]["source"] == f"batch:{first}"

        missing = await client.post("/v1/admin/models/nope/promote", json={})
        assert missing.status_code == 404
        assert missing.json()["field"] == "version"


async def test_stats_count_the_callers_decisions_and_outcomes(client: AsyncTestClient[Any]
                                                              ) -> None:
    ids = [(await _route(client))["decision_id"] for _ in range(3)]
    verdicts = ["approved", "rejected"]
    for decision_id, verdict in zip(ids, verdicts, strict=False):
        response = await client.post("/v1/feedback", json={
            "decision_id": decision_id, "outcome": verdict, "quality": 8.0,
            "generation_time_s": 10.0, "cost_usd": 0.01,
            "code": "def f(x: int) -> int:\n    return x\n"})
        assert response.status_code == 200, response.text
    stats = (await client.get("/v1/stats")).json()
    assert stats["decisions"] == 3
    assert stats["outcomes"] == 2
    assert stats["by_outcome"] == {"approved": 1, "rejected": 1}
    assert stats["by_task_type"] == {"backend": 2}
    assert stats["averages"]["success_rate"] == 0.5
    assert stats["averages"]["quality"] == 8.0
    assert stats["learned_outcomes"] == 2


async def test_admin_endpoints_need_an_admin_tenant(database_url: str) -> None:
    settings = make_settings(
        database_url,
        ROUTER__AUTH__API_KEYS='{"key-for-team-a-0001": "team-a", "key-for-ops-000001": "ops"}',
        ROUTER__AUTH__ADMIN_TENANTS='["ops"]',
    )
    async with AsyncTestClient(create_app(settings)) as client:
        refused = await client.post("/v1/admin/models/rollback",
                                    headers={"X-API-Key": "key-for-team-a-0001"})
        assert refused.status_code == 403
        assert refused.json()["field"] == "authorization"
        allowed = await client.post("/v1/admin/models/rollback",
                                    headers={"X-API-Key": "key-for-ops-000001"})
        assert allowed.status_code == 409  # an admin, but nothing to roll back yet


async def test_high_risk_decisions_use_the_conservative_strategy(batch_settings: Settings
                                                                 ) -> None:
    await _train(batch_settings, seed=5)
    async with AsyncTestClient(create_app(batch_settings)) as client:
        routing = client.app.state.routing
        loaded = routing.models.current
        assert loaded is not None
        # A calibration that rates every action at 5% success: every greedy action is high-risk.
        loaded.models.calibration = ([0.0, 1.0], [0.05, 0.05])
        for i in range(5):
            body = await _route(client, request_id=f"risky-{i}")
            assert body["risk"]["level"] == "high"
            assert body["temperature"] <= 0.2
            strategy = [f for f in body["risk"]["factors"] if "conservative strategy" in f]
            assert len(strategy) == 1, body["risk"]["factors"]
            assert body["template"] in strategy[0]
            logged = (await client.get(f"/v1/decisions/{body['decision_id']}")).json()
            assert all(client.app.state.routing.catalog.get(a).temperature <= 0.2
                       for a in logged["allowed_actions"])
            assert abs(sum(logged["probabilities"]) - 1.0) < 1e-9


async def test_served_success_blends_batch_and_river_once_river_has_learned(
    batch_settings: Settings,
) -> None:
    version = await _train(batch_settings, seed=6)
    async with AsyncTestClient(create_app(batch_settings)) as client:
        routing: RoutingService = client.app.state.routing
        assert routing.models.current is not None
        first = await _route(client)
        assert first["predictions"]["source"] == f"batch:{version}"  # River has learned nothing
        for i in range(60):
            decision = await _route(client, request_id=f"blend-{i}")
            outcome = "approved" if i % 3 else "rejected"
            response = await client.post("/v1/feedback", json={
                "decision_id": decision["decision_id"], "outcome": outcome})
            assert response.status_code == 200, response.text
        body = await _route(client)
        predictions = body["predictions"]
        assert predictions["source"] == f"batch:{version}+river"
        logged = (await client.get(f"/v1/decisions/{body['decision_id']}")).json()
        assert routing.learner.applied_seq == 60  # the policy learned all 60 outcomes
        assert 0.0 <= predictions["success_probability"] <= 1.0
        assert logged["response"]["predictions"] == predictions


async def test_a_forged_current_version_is_refused_and_the_good_one_keeps_serving(
    batch_settings: Settings, tmp_path: Path
) -> None:
    good = await _train(batch_settings, seed=5)
    marker = tmp_path / "pwned"
    async with AsyncTestClient(create_app(batch_settings)) as client:
        assert (await _route(client))["predictions"]["source"] == f"batch:{good}"
        await insert_forged_version(batch_settings, marker)
        await asyncio.sleep(0.6)  # the service polls the registry every 0.2 s
        assert (await _route(client))["predictions"]["source"] == f"batch:{good}"
        assert client.app.state.routing.models.refused == {"forged"}
    assert not marker.exists()
