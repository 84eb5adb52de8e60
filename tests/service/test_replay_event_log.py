"""``router replay`` on the event log: the logged probability vectors, a bandit snapshot
evaluated from the logged features, VW trained offline, and the JSON and HTML outputs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import numpy as np
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from offline.simulate import simulate
from offline.world import World
from router.app import create_app
from router.cli import main
from router.storage.database import create_engine
from router.storage.models import Checkpoint
from tests.support import make_settings

pytestmark = pytest.mark.slow
NOISE_DECISIONS = 400


async def _checkpoints(url: str) -> list[tuple[int, int]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(Checkpoint.id, Checkpoint.last_seq)
                                      .order_by(Checkpoint.last_seq))
            return [(int(i), int(s)) for i, s in rows]
    finally:
        await engine.dispose()


async def test_replay_of_the_event_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/log.db"
    settings = make_settings(url)
    world = World(catalog=settings.catalog, seed=3)
    profile = settings.profiles["balanced"]
    async with AsyncTestClient(create_app(settings)) as client:
        await simulate(client, world, n=240, seed=3, profile=profile,  # type: ignore[arg-type]
                       request_prefix="first")
    # Shutdown wrote a checkpoint holding all 240 outcomes.
    (first_id, first_seq), *_ = await _checkpoints(url)
    assert first_seq == 240
    second_phase = datetime.now(UTC)
    # Restarted from that checkpoint, a second batch of decisions is routed before any of its
    # feedback is posted: each was drawn from the snapshot's policy.
    rng = np.random.default_rng(4)
    async with AsyncTestClient(create_app(settings)) as client:
        decided = []
        for step in range(60):
            task = world.sample_task(rng, step=step)
            body = msgspec.to_builtins(task.route_body(request_id=f"second-{step}"))
            response = await client.post("/v1/route", json=body)
            assert response.status_code == 200, response.text
            decided.append((task, response.json()))
        for task, decision in decided:
            action = settings.catalog.get(
                f"{decision['model']}|{decision['temperature']:g}|{decision['template']}")
            assert action is not None
            outcome = world.outcome(task, action, rng)
            response = await client.post("/v1/feedback", json={
                "decision_id": decision["decision_id"], "outcome": outcome.verdict.value,
                "quality": outcome.quality, "generation_time_s": outcome.generation_time_s,
                "cost_usd": outcome.cost_usd})
            assert response.status_code in (200, 201), response.text

    json_path, html_path = tmp_path / "out.json", tmp_path / "out.html"
    code = await asyncio.to_thread(main, [
        "replay", "--database-url", url, "--since", second_phase.isoformat(),
        "--policy", "logged", "--policy", f"bandit:{first_id}", "--policy", "uniform",
        "--policy", "bandit", "--bootstrap", "50", "--json", str(json_path),
        "--html", str(html_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(json_path.read_text())
    policies = report["policies"]
    assert report["n"] == 60
    snapshot = policies[f"bandit:{first_id}@240"]
    # Progressive validation starts from the newest checkpoint before the window's outcomes.
    assert policies[f"bandit:progressive@{first_id}"]["n"] == 60
    # The snapshot gives every logged decision exactly the probability it was drawn with.
    assert snapshot["max_weight"] == pytest.approx(1.0, abs=1e-6)
    assert snapshot["ess"] == pytest.approx(60.0, abs=1e-3)
    logged_mean = report["logged_reward"]
    for name in ("ips", "snips"):
        assert snapshot["estimates"][name]["value"] == pytest.approx(logged_mean, abs=1e-6)
        assert policies["logged"]["estimates"][name]["value"] == pytest.approx(logged_mean)
    for name in ("ips", "snips", "dr"):
        low, high = policies["uniform"]["estimates"][name]["ci"]
        assert low <= high
    # 60 decisions have not tried every catalog action: the uniform policy's excess mass over
    # the logger's on the never-chosen ones is reported, and its intervals cover the reward
    # range over that mass.
    assert report["logged_actions"] < report["actions"]
    uniform = policies["uniform"]
    assert 0.0 < uniform["unsupported_mass"] < 1.0
    low, high = uniform["estimates"]["dr"]["ci_analytic"]
    assert high - low >= uniform["unsupported_mass"] or (low, high) == (0.0, 1.0)
    assert "bandit:" in out
    assert "uniform" in out
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 3

    # VW cb_adf trained on the older half of all 300 decisions, evaluated on the rest.
    code = await asyncio.to_thread(main, [
        "replay", "--database-url", url, "--policy", "vw:dr", "--policy", "vw:mtr",
        "--policy", "logged", "--bootstrap", "0", "--json", str(json_path), "--quiet"])
    assert code == 0
    report = json.loads(json_path.read_text())
    assert report["n"] == 150
    for name in ("vw:dr", "vw:mtr"):
        result = report["policies"][name]
        assert result["n"] == 150
        # A deterministic policy: every weight is 0 or 1/propensity.
        assert result["mean_weight"] > 0
        assert set(result["estimates"]) == {"dm", "ips", "snips", "dr", "switch-dr"}


async def test_unknown_snapshot_is_a_clear_error(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/log.db"
    settings = make_settings(url)
    world = World(catalog=settings.catalog, seed=3)
    async with AsyncTestClient(create_app(settings)) as client:
        await simulate(client, world, n=20, seed=3,  # type: ignore[arg-type]
                       profile=settings.profiles["balanced"], request_prefix="x")
    code = await asyncio.to_thread(
        main, ["replay", "--database-url", url, "--policy", "bandit:999", "--quiet"])
    assert code == 2
    assert "no checkpoint 999" in capsys.readouterr().err


async def test_the_bandit_is_evaluated_out_of_sample(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Rewards are pure noise, so no policy is better than the one that logged them. A
    checkpoint that learned these very outcomes looks better on them (it chases the lucky
    draws); evaluated out of sample, the learned bandit must not beat the logged policy."""
    url = f"sqlite+aiosqlite:///{tmp_path}/noise.db"
    settings = make_settings(url)
    world = World(catalog=settings.catalog, seed=5)
    rng = np.random.default_rng(5)
    async with AsyncTestClient(create_app(settings)) as client:
        for step in range(NOISE_DECISIONS):
            body = msgspec.to_builtins(world.sample_task(rng, step=step).route_body(
                request_id=f"noise-{step}"))
            decision = (await client.post("/v1/route", json=body)).json()
            response = await client.post("/v1/feedback", json={
                "decision_id": decision["decision_id"], "outcome": "approved",
                "reward": float(rng.random() < 0.5)})
            assert response.status_code in (200, 201), response.text
    # Shutdown wrote a checkpoint holding every outcome: evaluating it on them is in sample.
    (checkpoint, last_seq), *_ = await _checkpoints(url)
    assert last_seq == NOISE_DECISIONS

    json_path = tmp_path / "out.json"
    code = await asyncio.to_thread(main, [
        "replay", "--database-url", url, "--policy", "logged", "--policy", "bandit",
        "--bootstrap", "100", "--json", str(json_path), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(json_path.read_text())
    [name] = [p for p in report["policies"] if p.startswith("bandit:")]
    logged = report["policies"]["logged"]["estimates"]["dr"]["value"]
    bandit = report["policies"][name]["estimates"]["dr"]
    # Not shown better than the logged policy by either interval (in sample, the checkpoint's
    # DR was 1.50, bootstrap interval [0.62, 2.97], against the logged 0.49).
    assert bandit["ci"][0] <= logged
    assert bandit["ci_analytic"][0] <= logged
    # The service learned each outcome right after its decision, so progressive validation
    # reproduces exactly the probabilities it served: every weight is 1.
    assert report["policies"][name]["max_weight"] == pytest.approx(1.0, abs=1e-6)
    assert bandit["value"] == pytest.approx(logged, abs=1e-9)
    # No checkpoint precedes these outcomes: the learner starts fresh and learns each
    # decision after evaluating it, and the output says so.
    assert name == "bandit:progressive@fresh"
    assert "progressive validation" in out
    assert "progressive validation" in report["notes"][name]

    # The frozen checkpoint is refused on decisions it learned from.
    code = await asyncio.to_thread(main, [
        "replay", "--database-url", url, "--policy", f"bandit:{checkpoint}", "--quiet"])
    assert code == 2
    assert "evaluated in sample" in capsys.readouterr().err
