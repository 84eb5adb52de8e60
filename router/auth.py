"""API keys map to tenants (``Authorization: Bearer <key>`` or ``X-API-Key``).

With no key configured the service is single-tenant and open; it says so in its start-up log.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from router.errors import AuthenticationError
from router.storage.repository import hash_api_key


class Authenticator:
    def __init__(self, *, key_hashes: Mapping[str, str], default_tenant: str) -> None:
        self.key_hashes = dict(key_hashes)
        self.default_tenant = default_tenant

    @property
    def enabled(self) -> bool:
        return bool(self.key_hashes)

    def tenant_for(self, headers: Mapping[str, str]) -> str:
        if not self.key_hashes:
            return self.default_tenant
        key = headers.get("x-api-key")
        if key is None:
            authorization = headers.get("authorization", "")
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                key = token.strip()
        if not key:
            raise AuthenticationError(
                "send an API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                field="authorization",
            )
        key_hash = hash_api_key(key)
        for known, tenant in self.key_hashes.items():
            if hmac.compare_digest(known, key_hash):
                return tenant
        raise AuthenticationError("unknown API key", field="authorization")
