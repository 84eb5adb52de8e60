"""The model registry: versioned batch-model artifacts with metrics and a promotion status.

Statuses: ``current`` (exactly one, or none before the first promotion), ``candidate`` (trained,
beats its baselines, not promoted), ``rejected`` (failed a baseline or the promotion gate),
``retired`` (was current, replaced by a newer version), ``rolled-back`` (was current, undone).
Artifacts live in the database, so every process and replica sees the same versions.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Any

import msgspec
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from learners.batch.report import ModelReport
from router.storage.database import connection
from router.storage.models import ModelVersion
from router.storage.repository import as_utc
from router.storage.stored_json import convert_stored

CURRENT = "current"
CANDIDATE = "candidate"
REJECTED = "rejected"
RETIRED = "retired"
ROLLED_BACK = "rolled-back"


class RegistryError(ValueError):
    """A registry operation that cannot be done (unknown version, nothing to roll back to)."""


class GateResult(msgspec.Struct, frozen=True):
    """What the promotion gate decided about a version (its ``gate`` column): the status it
    gave, whether the version passed, the reasons, and the version (or policy) it was compared
    with, if any."""

    status: str
    passed: bool
    reasons: list[str]
    compared_with: str | None


class _VersionFields(msgspec.Struct, frozen=True):
    """What a training run records about a version."""

    version: str
    status: str
    data_from: datetime
    data_to: datetime
    holdout_from: datetime
    n_train: int
    n_holdout: int
    feature_spec_hash: str
    # Each model's hold-out report (``success``, ``complexity``, ...; empty for a version
    # registered without training). A metric that was NaN or infinite is stored as null and
    # read back as NaN.
    metrics: dict[str, ModelReport]
    # None: registered without going through the gate (a benchmark's or a test's version).
    gate: GateResult | None


class VersionInfo(_VersionFields, frozen=True):
    """A registered version without its artifact."""

    created_at: datetime
    promoted_at: datetime | None


class NewVersion(_VersionFields, frozen=True):
    """A version to register, with its artifact and model card."""

    artifact: bytes
    model_card: str


_INFO_COLUMNS = (
    ModelVersion.version,
    ModelVersion.created_at,
    ModelVersion.status,
    ModelVersion.data_from,
    ModelVersion.data_to,
    ModelVersion.holdout_from,
    ModelVersion.n_train,
    ModelVersion.n_holdout,
    ModelVersion.feature_spec_hash,
    ModelVersion.metrics,
    ModelVersion.gate,
    ModelVersion.promoted_at,
)


def _stored_gate(gate: GateResult | None) -> dict[str, Any]:
    """The ``gate`` column's JSON: the record's fields, or ``{}`` for a version without one."""
    return {} if gate is None else msgspec.structs.asdict(gate)


def _info(row: Any) -> VersionInfo:
    values = row._asdict()
    for key in ("created_at", "data_from", "data_to", "holdout_from", "promoted_at"):
        if values[key] is not None:
            values[key] = as_utc(values[key])
    values["gate"] = values["gate"] or None
    return convert_stored(values, VersionInfo)


class ModelRegistry:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, new: NewVersion) -> VersionInfo:
        now = datetime.now(UTC)
        promote = new.status == CURRENT
        async with self._connection(write=True) as conn:
            if promote:
                await conn.execute(
                    update(ModelVersion).where(ModelVersion.status == CURRENT)
                    .values(status=RETIRED)
                )
            columns = msgspec.structs.asdict(new) | {
                "metrics": msgspec.to_builtins(new.metrics), "gate": _stored_gate(new.gate)}
            await conn.execute(
                insert(ModelVersion).values(
                    **columns, created_at=now, promoted_at=now if promote else None,
                )
            )
        info = await self.info(new.version)
        assert info is not None
        return info

    def _connection(self, *, write: bool = False) -> AbstractAsyncContextManager[AsyncConnection]:
        return connection(self.engine, write=write, what="the model registry")

    async def versions(self) -> list[VersionInfo]:
        async with self._connection() as conn:
            rows = await conn.execute(select(*_INFO_COLUMNS).order_by(ModelVersion.created_at))
            return [_info(row) for row in rows]

    async def info(self, version: str) -> VersionInfo | None:
        async with self._connection() as conn:
            row = (await conn.execute(
                select(*_INFO_COLUMNS).where(ModelVersion.version == version))).first()
        return None if row is None else _info(row)

    async def current(self) -> VersionInfo | None:
        async with self._connection() as conn:
            row = (await conn.execute(
                select(*_INFO_COLUMNS).where(ModelVersion.status == CURRENT))).first()
        return None if row is None else _info(row)

    async def current_version(self) -> str | None:
        """The current version's name (one indexed lookup: services poll this)."""
        async with self._connection() as conn:
            value = await conn.scalar(
                select(ModelVersion.version).where(ModelVersion.status == CURRENT))
        return None if value is None else str(value)

    async def artifact(self, version: str) -> bytes:
        async with self._connection() as conn:
            data = await conn.scalar(
                select(ModelVersion.artifact).where(ModelVersion.version == version))
        if data is None:
            raise RegistryError(f"no model version {version!r}")
        return bytes(data)

    async def replace_artifact(self, version: str, artifact: bytes) -> None:
        """Store ``artifact`` as ``version``'s (``router models reseal``)."""
        async with self._connection(write=True) as conn:
            await conn.execute(update(ModelVersion).where(ModelVersion.version == version)
                               .values(artifact=artifact))

    async def model_card(self, version: str) -> str:
        async with self._connection() as conn:
            text = await conn.scalar(
                select(ModelVersion.model_card).where(ModelVersion.version == version))
        if text is None:
            raise RegistryError(f"no model version {version!r}")
        return str(text)

    async def promote(self, version: str, gate: GateResult | None = None) -> VersionInfo:
        """Make ``version`` current (the previous current one becomes ``retired``); ``gate``,
        when given, replaces the version's gate record (the evidence for this promotion)."""
        now = datetime.now(UTC)
        async with self._connection(write=True) as conn:
            found = await conn.scalar(
                select(ModelVersion.version).where(ModelVersion.version == version))
            if found is None:
                raise RegistryError(f"no model version {version!r}")
            await conn.execute(
                update(ModelVersion).where(ModelVersion.status == CURRENT,
                                           ModelVersion.version != version)
                .values(status=RETIRED))
            values: dict[str, Any] = {"status": CURRENT, "promoted_at": now}
            if gate is not None:
                values["gate"] = _stored_gate(gate)
            await conn.execute(
                update(ModelVersion).where(ModelVersion.version == version).values(**values))
        info = await self.info(version)
        assert info is not None
        return info

    async def rollback(self) -> VersionInfo:
        """Undo the newest promotion: the current version becomes ``rolled-back`` and the
        most recently promoted ``retired`` version is current again."""
        async with self._connection(write=True) as conn:
            current = await conn.scalar(
                select(ModelVersion.version).where(ModelVersion.status == CURRENT))
            if current is None:
                raise RegistryError("no current model version to roll back")
            previous = await conn.scalar(
                select(ModelVersion.version)
                .where(ModelVersion.status == RETIRED, ModelVersion.promoted_at.is_not(None))
                .order_by(ModelVersion.promoted_at.desc()).limit(1))
            if previous is None:
                raise RegistryError(
                    f"{current} is the only version ever promoted; nothing to roll back to")
            await conn.execute(update(ModelVersion).where(ModelVersion.version == current)
                               .values(status=ROLLED_BACK))
            await conn.execute(update(ModelVersion).where(ModelVersion.version == previous)
                               .values(status=CURRENT))
        info = await self.info(str(previous))
        assert info is not None
        return info
