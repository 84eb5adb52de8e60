"""Stored API keys: the configured keys' HMAC hashes, their tenants and revocations.

The table mirrors the config (:meth:`ApiKeyStore.sync` on every start) except for revoked
keys, which stay as tombstones so that a revoked key put back into the config is still refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import msgspec
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from router.errors import StorageUnavailableError
from router.storage.models import ApiKey, Tenant
from router.storage.repository import as_utc

KEY_ID_LENGTH = 12  # hex digits of a key's hash that name it in `router keys list`
MIN_KEY_ID = 8  # hex digits a revocation must name, so that one typo cannot hit another key


class KeyStoreError(ValueError):
    """A key operation that cannot be done (unknown or ambiguous key id)."""


class StoredKey(msgspec.Struct, frozen=True):
    """A stored key as operators see it: never the key, only the start of its hash."""

    key_id: str
    tenant_id: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def sync(self, hashes: Mapping[str, str], aliases: Mapping[str, str],
                   tenants: list[str]) -> frozenset[str]:
        """Make the stored keys exactly ``hashes`` (hash -> tenant), keeping revoked ones, and
        return the revoked hashes. ``aliases`` maps a configured key's hash under a previous
        server secret to its current hash: a revocation made before the rotation carries over.
        """
        try:
            try:
                return await self._sync(hashes, aliases, tenants)
            except IntegrityError:  # another process synced the same rows at the same time
                return await self._sync(hashes, aliases, tenants)
        except (OperationalError, DBAPIError) as exc:
            raise StorageUnavailableError(f"the key store is unavailable: {exc.orig}") from exc

    async def _sync(self, hashes: Mapping[str, str], aliases: Mapping[str, str],
                    tenants: list[str]) -> frozenset[str]:
        now = datetime.now(UTC)
        async with self.engine.begin() as conn:
            known = set((await conn.scalars(select(Tenant.id))).all())
            for tenant in sorted({*tenants, *hashes.values()} - known):
                await conn.execute(insert(Tenant).values(id=tenant, created_at=now))
            stored = {row.key_hash: row for row in await conn.execute(
                select(ApiKey.key_hash, ApiKey.tenant_id, ApiKey.revoked_at))}
            revoked = {h for h, row in stored.items() if row.revoked_at is not None}
            revoked |= {current for old, current in aliases.items() if old in revoked}
            gone = [h for h in stored if h not in hashes and h not in revoked]
            if gone:
                await conn.execute(delete(ApiKey).where(ApiKey.key_hash.in_(gone)))
            for key_hash, tenant in hashes.items():
                row = stored.get(key_hash)
                revoked_at = now if key_hash in revoked else None
                if row is None:
                    await conn.execute(insert(ApiKey).values(
                        key_hash=key_hash, tenant_id=tenant, created_at=now,
                        revoked_at=revoked_at))
                elif row.tenant_id != tenant or (row.revoked_at is None) != (revoked_at is None):
                    await conn.execute(update(ApiKey).where(ApiKey.key_hash == key_hash).values(
                        tenant_id=tenant, revoked_at=row.revoked_at or revoked_at))
            return frozenset(revoked)

    async def revoked(self) -> frozenset[str]:
        """Hashes of every revoked key (each process polls this)."""
        async with self.engine.connect() as conn:
            rows = await conn.scalars(
                select(ApiKey.key_hash).where(ApiKey.revoked_at.is_not(None)))
            return frozenset(rows.all())

    async def keys(self) -> list[StoredKey]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(ApiKey.key_hash, ApiKey.tenant_id, ApiKey.created_at, ApiKey.revoked_at)
                .order_by(ApiKey.tenant_id, ApiKey.key_hash))
            return [self._stored(row.key_hash, row.tenant_id, row.created_at, row.revoked_at)
                    for row in rows]

    async def revoke(self, key_id: str) -> StoredKey:
        """Revoke the one key whose id starts with ``key_id`` (at least ``MIN_KEY_ID`` hex
        digits); running services refuse it within their poll interval."""
        key_id = key_id.strip().lower()
        if len(key_id) < MIN_KEY_ID or any(c not in "0123456789abcdef" for c in key_id):
            raise KeyStoreError(f"a key id is at least {MIN_KEY_ID} hex digits "
                                "(`router keys list` shows them)")
        async with self.engine.begin() as conn:
            matches = await self._matching(conn, key_id)
            if len(matches) != 1:
                which = "no key" if not matches else f"{len(matches)} keys"
                raise KeyStoreError(f"{which} with id {key_id!r}")
            key_hash = matches[0]
            await conn.execute(update(ApiKey).where(
                ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC)))
            row = (await conn.execute(
                select(ApiKey.key_hash, ApiKey.tenant_id, ApiKey.created_at, ApiKey.revoked_at)
                .where(ApiKey.key_hash == key_hash))).one()
        return self._stored(row.key_hash, row.tenant_id, row.created_at, row.revoked_at)

    @staticmethod
    async def _matching(conn: AsyncConnection, key_id: str) -> list[str]:
        rows = await conn.scalars(select(ApiKey.key_hash).where(
            ApiKey.key_hash >= key_id, ApiKey.key_hash < key_id + "g"))
        return list(rows.all())

    @staticmethod
    def _stored(key_hash: str, tenant_id: str, created_at: datetime,
                revoked_at: datetime | None) -> StoredKey:
        return StoredKey(key_id=key_hash[:KEY_ID_LENGTH], tenant_id=tenant_id,
                         created_at=as_utc(created_at),
                         revoked_at=None if revoked_at is None else as_utc(revoked_at))
