"""The model registry's gate record: typed in, the same JSON in the ``gate`` column, typed out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from router.services.admin import version_view
from router.storage.database import create_engine, migrate
from router.storage.models import ModelVersion
from router.storage.registry import CANDIDATE, CURRENT, GateResult, ModelRegistry, NewVersion

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


def new_version(version: str, gate: GateResult | None) -> NewVersion:
    return NewVersion(
        version=version, status=CANDIDATE, data_from=NOW, data_to=NOW, holdout_from=NOW,
        n_train=10, n_holdout=2, feature_spec_hash="spec", metrics={}, gate=gate,
        artifact=b"artifact", model_card="card\n")


async def stored_gate(engine: AsyncEngine, version: str) -> object:
    async with engine.connect() as conn:
        return await conn.scalar(
            select(ModelVersion.gate).where(ModelVersion.version == version))


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
