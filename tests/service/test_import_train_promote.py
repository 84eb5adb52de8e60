"""The README's import -> train -> promote flow, through the command-line functions, on an
event log that holds ``router import``ed rows (logged without probability vectors) beside
decisions the service made (logged with them)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import AsyncTestClient

from offline.history_file import write_history
from offline.simulate import simulate
from offline.synthetic import generate_history
from offline.world import World
from router.app import create_app
from router.cli import main
from router.storage.database import create_engine
from router.storage.policy_store import PolicyStore
from tests.support import make_settings

pytestmark = pytest.mark.slow

FAST_TRAINING = {"SEARCH_BUDGET_S": "0", "MAX_TREES": "30", "THREADS": "1"}


async def test_import_train_replay_and_promote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    for key, value in FAST_TRAINING.items():
        monkeypatch.setenv(f"ROUTER__TRAINING__{key}", value)
    url = f"sqlite+aiosqlite:///{tmp_path}/flow.db"
    settings = make_settings(url)
    world = World(catalog=settings.catalog, seed=11)
    history = tmp_path / "history.csv"
    write_history(history, generate_history(world, 600, seed=11))
    base = ["--database-url", url]

    assert await asyncio.to_thread(main, ["import", str(history), *base]) == 0
    trained = tmp_path / "train.json"
    assert await asyncio.to_thread(main, ["train", *base, "--json", str(trained)]) == 0
    version = json.loads(trained.read_text())["version"]
    capsys.readouterr()

    # Only imported rows: their probabilities are logged as [].
    replayed = tmp_path / "replay.json"
    code = await asyncio.to_thread(main, [
        "replay", *base, "--policy", "logged", "--policy", "uniform",
        "--policy", f"batch-greedy:{version}", "--bootstrap", "50", "--quiet",
        "--json", str(replayed)])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(replayed.read_text())
    assert report["n"] == 600
    logged = report["policies"]["logged"]["estimates"]["dr"]
    # Without logged vectors the served policy is valued by its logged rewards.
    assert logged["value"] == pytest.approx(report["logged_reward"])
    uniform = report["policies"]["uniform"]
    # The import logged uniformly over the allowed actions: every weight is 1.
    assert uniform["mean_weight"] == pytest.approx(1.0)
    for policy in report["policies"].values():
        for estimate in policy["estimates"].values():
            low, high = estimate["ci"]
            assert 0.0 <= low <= high <= 1.0

    # Then the service decides (rows with vectors) and learns; the log mixes both kinds.
    async with AsyncTestClient(create_app(settings)) as client:
        await simulate(client, world, n=60, seed=12,  # type: ignore[arg-type]
                       profile=settings.profiles["balanced"], request_prefix="live")
    code = await asyncio.to_thread(main, [
        "replay", *base, "--policy", "logged", "--policy", "uniform", "--bootstrap", "0",
        "--quiet", "--json", str(replayed)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert json.loads(replayed.read_text())["n"] == 660

    decision_file = tmp_path / "gate.json"
    code = await asyncio.to_thread(main, [
        "promote", "--candidate", f"batch:{version}", *base, "--bootstrap", "50",
        "--json", str(decision_file)])
    captured = capsys.readouterr()
    # The greedy batch policy agrees with the uniformly logged history on about 1 decision in
    # 100: an effective sample of about 10, far below --min-ess, whatever its interval says.
    assert code == 1, captured.err
    decision = json.loads(decision_file.read_text())
    assert decision["decision"] == "refused"
    evidence = decision["evidence"]
    assert evidence["candidate"]["n"] == 660
    assert evidence["candidate"]["ess"] < evidence["min_ess"] == 100
    assert "is below --min-ess 100" in decision["reason"]
    assert f"refused: batch:{version}" in captured.out
    for side in ("current", "candidate"):
        for low, high in (evidence[side]["dr"]["ci"], evidence[side]["dr"]["ci_analytic"]):
            assert 0.0 <= low <= high <= 1.0
    engine = create_engine(url)
    try:
        records = await PolicyStore(engine).promotions()
    finally:
        await engine.dispose()
    assert [(r.candidate, r.decision, r.n) for r in records] == [
        (f"batch:{version}", "refused", 660)]
    assert np.isfinite(evidence["candidate"]["dr"]["value"])
