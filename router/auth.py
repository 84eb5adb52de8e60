"""API keys map to tenants (``Authorization: Bearer <key>`` or ``X-API-Key``).

The config (``ROUTER__AUTH__API_KEYS``) is the source of truth: on start the stored keys become
exactly the configured ones. Keys are known only by their HMAC-SHA256 under a key derived from
the server secret, so the database holds nothing a stolen copy could authenticate with, nor
anything that can be checked offline without the secret. A key revoked with ``router keys
revoke`` stays refused even while it is still configured; running processes read revocations
every ``[auth] revocation_poll_interval_s``.

With no key configured the service is single-tenant and open; it says so in its start-up log.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Iterable, Mapping

from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.handlers.base import BaseRouteHandler

from learners.sealed import Keyring, derive_key
from router.errors import AuthenticationError
from router.storage.api_keys import KEY_ID_LENGTH, ApiKeyStore

logger = logging.getLogger(__name__)
_KEY_PURPOSE = b"adaptive-router api key v1"


def api_key_hasher(secret: bytes) -> ApiKeyHasher:
    return ApiKeyHasher(derive_key(secret, _KEY_PURPOSE))


class ApiKeyHasher:
    """HMAC-SHA256 of API keys under a key derived from one server secret."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __repr__(self) -> str:
        return "ApiKeyHasher()"

    def __call__(self, api_key: str) -> str:
        return hmac.digest(self._key, api_key.encode(), "sha256").hex()


def key_id(key_hash: str) -> str:
    """The short public name of a key (``router keys list``): the start of its hash."""
    return key_hash[:KEY_ID_LENGTH]


class ConfiguredKeys:
    """The configured keys hashed with the current secret (``hashes``: hash -> tenant) and with
    each previous one (``aliases``: previous hash -> current hash), so that a revocation
    recorded before a secret rotation still finds its key."""

    def __init__(self, api_keys: Mapping[str, str], keyring: Keyring) -> None:
        current, *previous = (api_key_hasher(s) for s in keyring.secrets)
        self.hashes = {current(key): tenant for key, tenant in api_keys.items()}
        self.aliases = {old(key): current(key) for old in previous for key in api_keys}
        self.hasher = current


class Authenticator:
    """Maps a request's API key to its tenant (a dict look-up by keyed hash)."""

    def __init__(self, *, keys: ConfiguredKeys, default_tenant: str,
                 revoked: Iterable[str] = ()) -> None:
        self.keys = keys
        self.default_tenant = default_tenant
        self.revoked: frozenset[str] = frozenset()
        self._active: dict[str, str] = {}
        self.revoke(revoked)

    @property
    def enabled(self) -> bool:
        return bool(self.keys.hashes)

    def revoke(self, revoked: Iterable[str]) -> None:
        """Refuse the keys whose hashes are in ``revoked`` from now on (and only those)."""
        self.revoked = frozenset(revoked)
        # The configured keys minus the revoked ones; a remapped or removed key is simply
        # not here, so it is refused like any unknown key.
        self._active = {h: t for h, t in self.keys.hashes.items() if h not in self.revoked}

    def tenant_for(self, headers: Mapping[str, str]) -> str:
        if not self.keys.hashes:
            return self.default_tenant
        # An empty X-API-Key is no key: it must not hide a valid Bearer key.
        key = headers.get("x-api-key", "").strip()
        if not key:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() == "bearer":
                key = token.strip()
        if not key:
            raise AuthenticationError(
                "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                field="authorization",
            )
        # The look-up is by HMAC digest under the server secret: a caller cannot choose
        # digests, so the dict's timing says nothing about the stored keys.
        tenant = self._active.get(self.keys.hasher(key))
        if tenant is None:
            raise AuthenticationError("unknown or revoked API key", field="authorization")
        return tenant


def require_api_key(connection: ASGIConnection[BaseRouteHandler, object, object, State],
                    _: BaseRouteHandler) -> None:
    """Guard of routes that take no tenant (the OpenAPI documents): a valid key when keys
    are configured."""
    authenticator: Authenticator = connection.app.state.authenticator
    authenticator.tenant_for(connection.headers)


class RevocationWatcher:
    """Keeps an :class:`Authenticator` in step with the revocations stored in the database."""

    def __init__(self, store: ApiKeyStore, authenticator: Authenticator, *,
                 poll_interval_s: float) -> None:
        self.store = store
        self.authenticator = authenticator
        self.poll_interval_s = poll_interval_s

    async def refresh(self) -> bool:
        """Read the revoked hashes; True when they changed."""
        revoked = await self.store.revoked()
        if revoked == self.authenticator.revoked:
            return False
        self.authenticator.revoke(revoked)
        warn_revoked_in_config(self.authenticator)
        return True

    async def refresh_forever(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self.refresh()
            except Exception as exc:
                if not failing:  # one line per outage, not one per poll
                    logger.warning("reading API-key revocations failed (%s: %s); retrying every "
                                   "%g s", type(exc).__name__, exc, self.poll_interval_s)
                failing = True
                continue
            if failing:
                logger.info("reading API-key revocations works again")
            failing = False


def warn_revoked_in_config(authenticator: Authenticator) -> None:
    for key_hash, tenant in sorted(authenticator.keys.hashes.items()):
        if key_hash in authenticator.revoked:
            logger.warning("API key %s of tenant %r is revoked but still configured: it is "
                           "refused; remove it from ROUTER__AUTH__API_KEYS",
                           key_id(key_hash), tenant)
