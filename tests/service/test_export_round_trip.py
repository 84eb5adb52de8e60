"""``router export`` -> ``router import`` (a fresh database) -> ``router replay``: a log made by
route and feedback calls replays to the same figures after the round trip, in every format."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from offline.history_file import read_history
from offline.simulate import simulate
from offline.world import World
from router.app import create_app
from router.cli import main
from router.storage.database import create_engine
from router.storage.models import Decision, Outcome, Tenant
from tests.support import make_settings

KEYS = {"k-team-a-0123456789": "team-a", "k-team-b-0123456789": "team-b"}


async def _make_log(url: str) -> None:
    """Decisions of two tenants, some narrowed by constraints, with outcomes (one with code)."""
    settings = make_settings(url, ROUTER__AUTH__API_KEYS=json.dumps(KEYS))
    world = World(catalog=settings.catalog, seed=5)
    profile = settings.profiles["balanced"]
    async with AsyncTestClient(create_app(settings)) as client:
        for seed, key in enumerate(KEYS):
            client.headers["X-API-Key"] = key
            await simulate(client, world, n=60, seed=seed, profile=profile,  # type: ignore[arg-type]
                           feedback_delay=4, request_prefix=f"sim-{seed}")
        rng = np.random.default_rng(6)
        models = [m.name for m in settings.catalog.models][:2]
        for step in range(20):
            body = msgspec.to_builtins(world.sample_task(rng, step=step).route_body(f"c-{step}"))
            body["constraints"] = {"models": models, "temperatures": [0.2]}
            decision = (await client.post("/v1/route", json=body)).json()
            feedback = {"decision_id": decision["decision_id"],
                        "outcome": ["approved", "modified", "rejected"][step % 3],
                        "quality": 7.5, "generation_time_s": 3.0 + step, "tokens": 900}
            if step == 0:
                feedback["code"] = "def add(a, b):\n    return a + b\n"
            assert (await client.post("/v1/feedback", json=feedback)).status_code == 200


async def _rows(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(Decision.created_at, Decision.tenant_id, Decision.allowed,
                       Decision.probabilities, Decision.chosen_action, Decision.propensity,
                       Decision.request["features"], Decision.features, Decision.explored,
                       Outcome.verdict, Outcome.reward,
                       Outcome.quality, Outcome.code, Outcome.created_at)
                .join(Outcome, Outcome.decision_id == Decision.id)
                .order_by(Decision.created_at))
            return [tuple(row) for row in rows]
    finally:
        await engine.dispose()


async def _tenants(url: str) -> list[tuple[str, int]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return [(str(t), int(n)) for t, n in await conn.execute(
                select(Tenant.id, Tenant.decisions).order_by(Tenant.id))]
    finally:
        await engine.dispose()


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


async def _replay(url: str, out: Path, fixed: str) -> dict[str, Any]:
    # bandit: progressive validation from a fresh learner over the logged features, which
    # import recomputes from the rows.
    policies = ["--policy", "logged", "--policy", "uniform", "--policy", f"fixed:{fixed}",
                "--policy", "bandit"]
    assert await _cli("replay", "--database-url", url, *policies, "--bootstrap", "50",
                      "--json", str(out), "--quiet") == 0
    report: dict[str, Any] = json.loads(await asyncio.to_thread(out.read_text))
    report.pop("log")  # names the database
    return report


@pytest.mark.slow
async def test_export_import_replay_round_trips(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    original = f"sqlite+aiosqlite:///{tmp_path}/original.db"
    await _make_log(original)
    logged_rows = await _rows(original)
    # The action chosen most often (the estimators refuse a fixed action never chosen).
    fixed = Counter(row[4] for row in logged_rows).most_common(1)[0][0]
    expected = await _replay(original, tmp_path / "original.json", fixed)
    assert expected["n"] == 140
    for suffix in (".jsonl", ".csv", ".parquet"):
        exported = tmp_path / f"export{suffix}"
        assert await _cli("export", "--database-url", original, "--out", str(exported)) == 0
        assert f"140 decisions with outcomes written to {exported}" in capsys.readouterr().out
        fresh = f"sqlite+aiosqlite:///{tmp_path}/fresh{suffix[1:]}.db"
        assert await _cli("import", str(exported), "--database-url", fresh) == 0
        # The imported decisions and outcomes are the logged ones ...
        assert await _rows(fresh) == logged_rows
        assert await _tenants(fresh) == [("team-a", 60), ("team-b", 80)]
        # ... they export to the same rows ...
        again = tmp_path / f"again{suffix}"
        assert await _cli("export", "--database-url", fresh, "--out", str(again)) == 0
        rows = [row for chunk in read_history(exported) for row in chunk]
        assert [row for chunk in read_history(again) for row in chunk] == rows
        # ... and replay to the same figures.
        assert await _replay(fresh, tmp_path / f"fresh{suffix}.json", fixed) == expected
    assert sum(row.code is not None for row in rows) == 1
    assert all(len(row.allowed) == len(row.probabilities) > 0 for row in rows)
    assert min(len(row.allowed) for row in rows) < max(len(row.allowed) for row in rows)
    assert all(row.features for row in rows[:120])


async def test_export_of_one_tenant(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/log.db"
    await _make_log(url)
    capsys.readouterr()
    out = tmp_path / "team-a.jsonl"
    assert await _cli("export", "--database-url", url, "--tenant", "team-a",
                      "--out", str(out)) == 0
    captured = capsys.readouterr()
    assert "with outcomes: 60" in captured.out
    assert "router export" not in captured.err  # no progress bar without a terminal
    rows = [row for chunk in read_history(out) for row in chunk]
    assert len(rows) == 60
    assert {row.tenant for row in rows} == {"team-a"}
