"""Shadow policies: serving is unchanged by them, they learn from the same outcomes (and a
restart reproduces them), replay reads their logged probabilities, and ``router promote``
promotes a better one and refuses (and records) one that is not shown to be better."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from learners.context import DecisionContext
from learners.features import describe_context
from learners.interval import Interval
from offline.simulate import simulate
from offline.world import SimTask, World
from router.app import create_app
from router.cli import main
from router.services.routing import RoutingService
from router.settings import Settings, SettingsError, load_settings
from router.storage.database import create_engine
from router.storage.models import Decision
from router.storage.policy_store import (
    GateEvidence,
    NewPromotion,
    PolicyEvidence,
    PolicyStore,
    PromotionWindow,
)
from tests.support import make_settings

pytestmark = pytest.mark.slow
TENANT = "default"  # no API keys: every call is the default tenant's

SHADOWS = {
    # An epsilon-greedy candidate, and one with the served configuration (an A/A control).
    "ROUTER__SHADOW__EPS__EXPLORATION": "epsilon",
    "ROUTER__SHADOW__EPS__EPSILON": "0.2",
    "ROUTER__SHADOW__SAME__SEED": "7",
}

# Three actions (3 models, one temperature, one template): uniform logging then gives
# importance weights of at most 3.
SMALL_CATALOG = """
temperatures = [0.2]

[[models]]
name = "frontier-large"
tier = "frontier"
input_price_per_mtok = 3.0
output_price_per_mtok = 15.0
typical_latency_s = 25.0

[[models]]
name = "code-specialist"
tier = "code"
input_price_per_mtok = 1.0
output_price_per_mtok = 3.0
typical_latency_s = 10.0

[[models]]
name = "local-8b"
tier = "local"
input_price_per_mtok = 0.0
output_price_per_mtok = 0.0
typical_latency_s = 18.0

[[templates]]
name = "plain"
style = "minimal"

# Served: uniform choice (epsilon-greedy with epsilon 1).
[bandit]
exploration = "epsilon"
epsilon = 1.0

# A learner: SquareCB (the product's default exploration).
[shadow.good]
exploration = "squarecb"

# Uniform choice too, with another seed: no better than what is served.
[shadow.equal]
seed = 8
"""


def routing(app: Litestar) -> RoutingService:
    service: RoutingService = app.state.routing
    return service


async def decision_rows(url: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(Decision.id, Decision.chosen_action, Decision.propensity,
                       Decision.probabilities, Decision.policy_version,
                       Decision.shadow_probabilities).order_by(Decision.created_at, Decision.id))
            return [row._asdict() for row in rows]
    finally:
        await engine.dispose()


def probe(service: RoutingService, task: SimTask) -> dict[str, list[float]]:
    """Every shadow's probabilities for one request (nothing is logged)."""
    body = task.route_body()
    context = DecisionContext(task=body.task, caller=body.context, features=dict(body.features),
                              objective=body.objective)
    features, _ = describe_context(context, datetime(2026, 1, 1, tzinfo=UTC))
    allowed = list(range(len(service.catalog)))
    answers = service.learner.shadows.decide(TENANT, features, service.catalog, allowed) or {}
    return {name: answer.probabilities for name, answer in answers.items()}


async def test_shadows_change_nothing_served_learn_and_replay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain_url = f"sqlite+aiosqlite:///{tmp_path}/plain.db"
    shadow_url = f"sqlite+aiosqlite:///{tmp_path}/shadow.db"
    plain = make_settings(plain_url)
    shadowed = make_settings(shadow_url, **SHADOWS)
    assert sorted(shadowed.shadow) == ["eps", "same"]
    # Keys a shadow leaves out come from [bandit].
    assert shadowed.shadow["same"] == shadowed.bandit
    world = World(catalog=plain.catalog, seed=5)
    profile = plain.profiles["balanced"]
    n = 80
    for settings in (plain, shadowed):
        async with AsyncTestClient(create_app(settings)) as client:
            await simulate(client, world, n=n, seed=5, profile=profile,  # type: ignore[arg-type]
                           feedback_delay=3, request_prefix="req")
            if settings is shadowed:
                versions = routing(client.app).learner.shadows.versions(TENANT)
                served = routing(client.app).learner.policies.for_tenant(TENANT).version
    # Same request ids, same learner states: the same decisions, drawn the same way.
    without, with_shadows = await decision_rows(plain_url), await decision_rows(shadow_url)
    assert len(without) == len(with_shadows) == n
    for a, b in zip(without, with_shadows, strict=True):
        assert (a["id"], a["chosen_action"], a["policy_version"]) == (
            b["id"], b["chosen_action"], b["policy_version"])
        assert a["probabilities"] == b["probabilities"]
        assert a["propensity"] == b["propensity"]
        assert a["shadow_probabilities"] is None
    # The shadows learned every outcome, in the served fold's order.
    assert versions["eps"].endswith(f".{n}")
    assert versions["same"] == served
    logged = [row["shadow_probabilities"] for row in with_shadows]
    learned = [int(entry["eps"]["version"].rpartition(".")[2]) for entry in logged]
    assert learned == sorted(learned)
    assert learned[0] == 0
    assert learned[-1] > n // 2
    for row, entry in zip(with_shadows, logged, strict=True):
        assert sum(entry["eps"]["probabilities"]) == pytest.approx(1.0)
        # The A/A shadow is the served policy: same fold, same probabilities.
        assert entry["same"]["probabilities"] == row["probabilities"]
    assert any(entry["eps"]["probabilities"] != row["probabilities"]
               for row, entry in zip(with_shadows, logged, strict=True))

    # A restart restores each shadow from its own checkpoint: same state, same answers.
    rng = np.random.default_rng(11)
    tasks = [world.sample_task(rng, step=i) for i in range(5)]
    async with AsyncTestClient(create_app(shadowed)) as client:
        before = [probe(routing(client.app), task) for task in tasks]
    async with AsyncTestClient(create_app(shadowed)) as client:
        assert routing(client.app).learner.shadows.versions(TENANT)["eps"].endswith(f".{n}")
        assert routing(client.app).learner.restored_seq == n
        after = [probe(routing(client.app), task) for task in tasks]
    assert before == after

    # Replay evaluates a shadow from the probabilities it logged.
    out = tmp_path / "replay.json"
    code = await asyncio.to_thread(main, [
        "replay", "--database-url", shadow_url, "--policy", "logged", "--policy", "shadow:same",
        "--policy", "shadow:eps", "--bootstrap", "0", "--json", str(out), "--quiet"])
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text())["policies"]
    assert report["shadow:same"]["max_weight"] == pytest.approx(1.0)
    assert report["shadow:same"]["estimates"]["dr"]["value"] == pytest.approx(
        report["logged"]["estimates"]["dr"]["value"])
    assert report["shadow:eps"]["ess"] < n - 1
    # The plain log has no shadow: a clear error naming the rows.
    code = await asyncio.to_thread(main, [
        "replay", "--database-url", plain_url, "--policy", "shadow:eps", "--quiet"])
    assert code == 2
    assert "were made without this shadow" in capsys.readouterr().err


def test_bad_shadow_settings_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"shadow\.eps\.epsilon: Expected `float` <= 1.0"):
        make_settings("sqlite+aiosqlite://", ROUTER__SHADOW__EPS__EPSILON="1.5")
    with pytest.raises(SettingsError, match=r"shadow\.eps: Object contains unknown field"):
        make_settings("sqlite+aiosqlite://", ROUTER__SHADOW__EPS__EPSLON="0.1")
    config = tmp_path / "bad.toml"
    config.write_text(SMALL_CATALOG + '\n[shadow."Bad Name"]\nseed = 1\n')
    with pytest.raises(SettingsError, match=r"shadow\.Bad Name: a shadow name is"):
        load_settings(config, {})


# Seeded traffic in which one model is clearly best: approved with probability 0.9 against 0.2
# for the others, whatever the task (uniform choice is worth about 0.43, the best model 0.9).
SUCCESS = {"frontier-large": 0.9, "code-specialist": 0.2, "local-8b": 0.2}


async def drive(client: AsyncTestClient[Litestar], world: World, *, n: int, seed: int) -> None:
    for step in range(n):
        rng = np.random.default_rng([seed, step])
        body = world.sample_task(rng, step=step).route_body(f"gate-{step}")
        decision = await client.post("/v1/route", json=msgspec.to_builtins(body))
        assert decision.status_code == 200, decision.text
        answer = decision.json()
        approved = bool(rng.random() < SUCCESS[answer["model"]])
        feedback = await client.post("/v1/feedback", json={
            "decision_id": answer["decision_id"],
            "outcome": "approved" if approved else "rejected",
            "reward": 1.0 if approved else 0.0})
        assert feedback.status_code == 200, feedback.text


async def test_promotion_gate_both_ways(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "router.toml"
    config.write_text(SMALL_CATALOG)
    url = f"sqlite+aiosqlite:///{tmp_path}/gate.db"
    settings: Settings = load_settings(config, {
        "ROUTER__STORAGE__URL": url, "ROUTER__LEARNING__POLICY_POLL_INTERVAL_S": "0.05"})
    assert len(settings.catalog) == 3
    world = World(catalog=settings.catalog, seed=21)
    n = 400  # the learner's ESS (uniform logging over 3 actions) is about n / 3: >= --min-ess
    common = ["--config", str(config), "--database-url", url, "--bootstrap", "200"]
    async with AsyncTestClient(create_app(settings)) as client:
        service = routing(client.app)
        uniform_fingerprint = service.learner.policies.fingerprint
        await drive(client, world, n=n, seed=21)

        # No better than what is served: refused, exit code 1, and recorded.
        code = await asyncio.to_thread(main, ["promote", "--candidate", "shadow:equal",
                                              *common])
        out = capsys.readouterr().out
        assert code == 1, out
        assert "refused: shadow:equal: DR 95% lower bound" in out
        assert service.learner.policies.fingerprint == uniform_fingerprint

        # The learner: promoted, and the running service switches to it.
        good_state = next(s for s in service.learner.shadows.shadows if s.name == "good")
        code = await asyncio.to_thread(main, ["promote", "--candidate", "shadow:good",
                                              "--json", str(tmp_path / "gate.json"), *common])
        out = capsys.readouterr().out
        assert code == 0, out
        assert "promoted: shadow:good: DR 95% lower bound" in out
        for _ in range(100):
            if service.learner.policies.fingerprint != uniform_fingerprint:
                break
            await asyncio.sleep(0.05)
        # The served policy is the shadow's configuration with everything the shadow learned.
        good_version = good_state.policies.for_tenant(TENANT).version
        assert service.learner.policies.for_tenant(TENANT).version == good_version
        assert service.learner.policies.for_tenant(TENANT).version.endswith(f".{n}")
        body = world.sample_task(np.random.default_rng(99), step=n).route_body("after")
        response = await client.post("/v1/route", json=msgspec.to_builtins(body))
        assert response.status_code == 200, response.text
        assert response.json()["policy"]["version"] == good_version
    rows = await decision_rows(url)
    last = rows[-1]
    assert last["shadow_probabilities"]["good"]["probabilities"] == last["probabilities"]

    # Both decisions are recorded with their evidence.
    engine = create_engine(url)
    try:
        records = await PolicyStore(engine).promotions()
        active = await PolicyStore(engine).active()
    finally:
        await engine.dispose()
    assert [(r.candidate, r.decision) for r in records] == [
        ("shadow:equal", "refused"), ("shadow:good", "promoted")]
    for record in records:
        assert record.n == n
        candidate, current = record.estimates.candidate, record.estimates.current
        assert candidate.n == current.n == n
        assert current.policy == "logged"
    refused, promoted = records
    assert refused.estimates.candidate.lower_bound <= refused.estimates.current.dr.value
    assert promoted.estimates.candidate.lower_bound > promoted.estimates.current.dr.value
    assert active is not None
    assert active.candidate == "shadow:good"
    saved = json.loads((tmp_path / "gate.json").read_text())
    assert saved["decision"] == "promoted"
    assert saved["promotion_id"] == promoted.id

    # A restart serves the promoted configuration in its learned state.
    async with AsyncTestClient(create_app(settings)) as client:
        assert routing(client.app).learner.policies.for_tenant(TENANT).version == good_version
        assert routing(client.app).learner.policies.fingerprint != uniform_fingerprint

    # What is served now cannot be promoted again, and nothing unknown can be.
    for candidate, message in (("shadow:good", "already served"),
                               ("shadow:nope", "no [shadow.nope] in the config"),
                               ("batch:v0", "no batch-model version 'v0'"),
                               ("model:x", "is not shadow:<name>")):
        code = await asyncio.to_thread(main, ["promote", "--candidate", candidate, *common])
        assert code == 2
        assert message in capsys.readouterr().err


# The gate's evidence for a candidate with two decisions: no variance, so no finite interval.
TOO_FEW_FOR_AN_INTERVAL = GateEvidence(
    current=PolicyEvidence(policy="logged", n=20, ess=20.0, lower_bound=0.41, dr=Interval(
        value=0.5, ci=(0.41, 0.58), ci_analytic=(0.42, 0.58), se=0.04)),
    candidate=PolicyEvidence(policy="shadow:eps", n=20, ess=2.0, lower_bound=math.nan,
                             unsupported_mass=0.25, dr=Interval(
                                 value=0.9, ci=(math.nan, math.nan),
                                 ci_analytic=(-math.inf, math.inf), se=math.nan)),
    level=0.95, bootstrap=0, rule="test", min_ess=0.0)


async def test_shadows_on_each_database(database_url: str) -> None:
    """The shadow column, the checkpoints and the promotion tables on SQLite and PostgreSQL."""
    settings = make_settings(database_url, **SHADOWS)
    world = World(catalog=settings.catalog, seed=2)
    async with AsyncTestClient(create_app(settings)) as client:
        await simulate(client, world, n=20, seed=2,  # type: ignore[arg-type]
                       profile=settings.profiles["balanced"], request_prefix="db")
        versions = routing(client.app).learner.shadows.versions(TENANT)
    assert versions["eps"].endswith(".20")
    async with AsyncTestClient(create_app(settings)) as client:
        assert routing(client.app).learner.shadows.versions(TENANT) == versions
    rows = await decision_rows(database_url)
    assert all(set(row["shadow_probabilities"]) == {"eps", "same"} for row in rows)
    engine = create_engine(database_url)
    try:
        store = PolicyStore(engine)
        window = PromotionWindow(since="2026-12-01T00:00:00+00:00", tenant=TENANT)
        promotion = NewPromotion(candidate="shadow:eps", window=window, n=20,
                                 estimates=TOO_FEW_FOR_AN_INTERVAL, decision="refused",
                                 reason="test")
        promotion_id = await store.record(promotion, activate=("f", settings.shadow["eps"]))
        active = await store.active()
        assert active is not None
        assert (active.id, active.bandit) == (await store.active_id(), settings.shadow["eps"])
        [record] = await store.promotions()
        assert (record.id, record.window) == (promotion_id, window)
        # Non-finite numbers are stored as JSON null and read back as NaN.
        assert math.isnan(record.estimates.candidate.lower_bound)
        assert all(math.isnan(end) for end in record.estimates.candidate.dr.ci_analytic)
        assert msgspec.json.encode(record.estimates) == msgspec.json.encode(
            TOO_FEW_FOR_AN_INTERVAL)
    finally:
        await engine.dispose()
