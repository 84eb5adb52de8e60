"""Revocation polling: a database outage is one warning, not one per poll."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from learners.sealed import Keyring
from router.auth import Authenticator, ConfiguredKeys, RevocationWatcher
from router.errors import AuthenticationError, StorageUnavailableError
from router.storage.api_keys import ApiKeyStore


class FlakyStore(ApiKeyStore):
    """Unavailable for the first ``failures`` polls, then reports one revoked hash."""

    def __init__(self, failures: int, revoked: frozenset[str]) -> None:
        self.failures = failures
        self.revoked_hashes = revoked

    async def revoked(self) -> frozenset[str]:
        if self.failures > 0:
            self.failures -= 1
            raise StorageUnavailableError("connection refused")
        return self.revoked_hashes


async def test_an_outage_is_logged_once_and_revocations_apply_after_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keys = ConfiguredKeys({"key-of-acme-123": "acme"}, Keyring(b"secret"))
    authenticator = Authenticator(keys=keys, default_tenant="default")
    store = FlakyStore(failures=8, revoked=frozenset(keys.hashes))
    watcher = RevocationWatcher(store, authenticator, poll_interval_s=0.01)
    caplog.set_level(logging.INFO, logger="router.auth")
    task = asyncio.create_task(watcher.refresh_forever())
    for _ in range(200):
        await asyncio.sleep(0.01)
        if store.failures == 0 and authenticator.revoked:
            break
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    failed = [r for r in caplog.records if "revocations failed" in r.getMessage()]
    assert len(failed) == 1
    assert authenticator.revoked == frozenset(keys.hashes)
    with pytest.raises(AuthenticationError, match="revoked"):
        authenticator.tenant_for({"x-api-key": "key-of-acme-123"})
