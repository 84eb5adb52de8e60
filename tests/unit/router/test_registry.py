"""The model registry's gate record and training metrics: typed in, JSON in the ``gate`` and
``metrics`` columns (non-finite floats as null), typed out, rows of earlier writers included."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from learners.batch.report import ModelReport
from router.cli import main
from router.services.admin import version_view
from router.storage.models import ModelVersion
from router.storage.registry import CANDIDATE, CURRENT, GateResult, ModelRegistry, NewVersion

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def new_version(version: str, gate: GateResult | None) -> NewVersion:
    return NewVersion(
        version=version, status=CANDIDATE, data_from=NOW, data_to=NOW, holdout_from=NOW,
        n_train=10, n_holdout=2, feature_spec_hash="spec", metrics={}, gate=gate,
        artifact=b"artifact", model_card="card\n")


async def stored_gate(engine: AsyncEngine, version: str) -> object:
    async with engine.connect() as conn:
        return await conn.scalar(
            select(ModelVersion.gate).where(ModelVersion.version == version))


async def stored_metrics(engine: AsyncEngine, version: str) -> object:
    async with engine.connect() as conn:
        return await conn.scalar(
            select(ModelVersion.metrics).where(ModelVersion.version == version))


# A success model evaluated on a hold-out of one class: no AUC; a log-loss that overflowed.
ONE_CLASS_HOLDOUT = ModelReport(
    name="success", n_train=10, n_holdout=2, metrics={"auc": math.nan, "log_loss": math.inf,
                                                      "brier": 0.25},
    baseline={"auc": 0.5, "log_loss": 0.69, "brier": 0.25}, primary="log_loss",
    lower_is_better=True, beats_baseline=False, params={"max_depth": 3.0})


async def test_a_gate_round_trips_through_the_registry(engine: AsyncEngine) -> None:
    registry = ModelRegistry(engine)
    trained = GateResult(status=CANDIDATE, passed=False, compared_with="v0",
                         reasons=["success log_loss 0.61 is worse than v0's 0.58"])
    added = await registry.add(new_version("v1", trained))
    assert added.gate == trained
    assert await stored_gate(engine, "v1") == {
        "status": CANDIDATE, "passed": False, "compared_with": "v0",
        "reasons": ["success log_loss 0.61 is worse than v0's 0.58"]}

    promoted = GateResult(status=CURRENT, passed=True, reasons=["DR lower bound 0.7 > 0.6"],
                          compared_with="logged (router promote)")
    info = await registry.promote("v1", gate=promoted)
    assert (info.status, info.gate) == (CURRENT, promoted)
    assert await registry.current() == info
    # Promoting without new evidence keeps the version's gate record.
    assert (await registry.promote("v1")).gate == promoted


async def test_a_version_registered_without_a_gate_stores_and_shows_an_empty_one(
    engine: AsyncEngine,
) -> None:
    registry = ModelRegistry(engine)
    info = await registry.add(new_version("bench", None))
    assert info.gate is None
    assert await stored_gate(engine, "bench") == {}
    assert version_view(info).gate == {}


async def test_rows_written_before_the_gate_was_typed_still_read(engine: AsyncEngine) -> None:
    """Rows as the registry wrote them from plain dictionaries: an empty gate (benchmark
    versions) and a gate record with its four keys."""
    legacy = {"status": "current", "passed": True, "reasons": ["no current version"],
              "compared_with": None}
    async with engine.begin() as conn:
        for minute, (version, gate) in enumerate((("empty", {}), ("gated", legacy))):
            await conn.execute(insert(ModelVersion).values(
                version=version, created_at=NOW + timedelta(minutes=minute), status=CANDIDATE,
                data_from=NOW, data_to=NOW, holdout_from=NOW, n_train=1, n_holdout=1,
                feature_spec_hash="x", metrics={}, gate=gate, artifact=b"a", model_card="-\n",
                promoted_at=None))
    registry = ModelRegistry(engine)
    empty, gated = await registry.versions()
    assert (empty.version, empty.gate) == ("empty", None)
    assert gated.gate == GateResult(status=CURRENT, passed=True,
                                    reasons=["no current version"], compared_with=None)
    assert version_view(gated).gate == legacy


async def test_metrics_are_reports_and_non_finite_ones_read_back_as_nan(
    engine: AsyncEngine,
) -> None:
    registry = ModelRegistry(engine)
    version = msgspec.structs.replace(new_version("v1", None),
                                      metrics={"success": ONE_CLASS_HOLDOUT})
    info = await registry.add(version)
    stored = await stored_metrics(engine, "v1")
    assert stored == {"success": msgspec.to_builtins(ONE_CLASS_HOLDOUT) | {
        "metrics": {"auc": None, "log_loss": None, "brier": 0.25}}}
    report = info.metrics["success"]
    assert math.isnan(report.metrics["auc"])
    assert math.isnan(report.score)
    assert (report.metrics["brier"], report.baseline, report.params) == (
        0.25, ONE_CLASS_HOLDOUT.baseline, ONE_CLASS_HOLDOUT.params)
    # The admin API shows the undefined metrics as null, as its schema says.
    shown = version_view(info)
    assert shown.metrics["success"].metrics == {"auc": None, "log_loss": None, "brier": 0.25}
    assert msgspec.json.decode(msgspec.json.encode(shown))["metrics"] == stored


async def test_router_models_list_reads_metrics_written_before_they_were_typed(
    database_url: str, engine: AsyncEngine, capsys: pytest.CaptureFixture[str],
) -> None:
    """Metrics as ``router train`` stored them from plain dictionaries: a report whose AUC
    is null, and the empty metrics of a benchmark's version."""
    legacy = {"success": {
        "name": "success", "n_train": 40, "n_holdout": 10,
        "metrics": {"auc": None, "log_loss": 0.5, "brier": 0.2, "ece": 0.05},
        "baseline": {"auc": 0.5, "log_loss": 0.69, "brier": 0.25, "ece": 0.0},
        "primary": "log_loss", "lower_is_better": True, "beats_baseline": True,
        "params": {"max_depth": 3, "learning_rate": 0.1}}}
    async with engine.begin() as conn:
        for minute, (version, metrics) in enumerate((("trained", legacy), ("bench", {}))):
            await conn.execute(insert(ModelVersion).values(
                version=version, created_at=NOW + timedelta(minutes=minute), status=CANDIDATE,
                data_from=NOW, data_to=NOW, holdout_from=NOW, n_train=40, n_holdout=10,
                feature_spec_hash="x", metrics=metrics, gate={}, artifact=b"a",
                model_card="-\n", promoted_at=None))
    trained, bench = await ModelRegistry(engine).versions()
    report = trained.metrics["success"]
    assert (report.score, report.params["max_depth"]) == (0.5, 3.0)
    assert math.isnan(report.metrics["auc"])
    assert bench.metrics == {}

    code = await asyncio.to_thread(main, ["models", "list", "--database-url", database_url])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("trained")
    assert lines[1].split()[-2:] == ["nan", "0.5000"]
    assert lines[2].startswith("bench")
    assert lines[2].split()[-2:] == ["nan", "nan"]
