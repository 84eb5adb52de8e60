"""API keys: the config is the source of truth, keys are revocable in running services, stored
only as HMAC hashes under the server secret, and every route but the probes and metrics needs
one (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from router.api_docs import ASSETS
from router.app import create_app
from router.cli import main
from router.settings import Settings
from router.storage.database import create_engine
from tests.support import make_settings

TASK = {"type": "backend", "language": "python", "description": "Build a REST API with JWT auth"}
ACME, GLOBEX = "key-of-acme-123", "key-of-globex-9"
BOTH = {ACME: "acme", GLOBEX: "globex"}
# The probes, the metrics and the API docs page with its Swagger UI files (router/api_docs.py).
OPEN_PATHS = {"/health", "/ready", "/metrics", "/docs",
              *(f"/docs/swagger-ui/{name}" for name in ASSETS)}


def keyed(database_url: str, keys: dict[str, str], **environ: str) -> Settings:
    return make_settings(database_url, ROUTER__AUTH__API_KEYS=msgspec.json.encode(keys).decode(),
                         ROUTER__AUTH__REVOCATION_POLL_INTERVAL_S="0.1", **environ)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def route_status(client: AsyncTestClient[Any], headers: dict[str, str]) -> int:
    return (await client.post("/v1/route", json={"task": TASK}, headers=headers)).status_code


async def keys_command(*args: str) -> str:
    """``router keys ...`` as an operator runs it (in a thread: the command runs its own
    event loop)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert await asyncio.to_thread(main, ["keys", *args]) == 0
    return out.getvalue()


async def key_id_of(database_url: str, tenant: str) -> str:
    """The id ``router keys list`` shows for the (only) key of ``tenant``."""
    listing = await keys_command("list", "--database-url", database_url)
    rows = [line.split() for line in listing.splitlines()[1:]]
    (found,) = [row[0] for row in rows if row[1] == tenant]
    return found


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(logging.WARNING)
    logging.getLogger("router").addHandler(handler)
    try:
        yield messages
    finally:
        logging.getLogger("router").removeHandler(handler)


async def test_a_key_removed_from_the_config_is_refused_after_restart(database_url: str) -> None:
    async with AsyncTestClient(create_app(keyed(database_url, BOTH))) as client:
        assert await route_status(client, bearer(GLOBEX)) == 200
    async with AsyncTestClient(create_app(keyed(database_url, {ACME: "acme"}))) as client:
        assert await route_status(client, bearer(GLOBEX)) == 401
        assert await route_status(client, bearer(ACME)) == 200


async def test_a_remapped_key_acts_for_its_new_tenant_after_restart(database_url: str) -> None:
    async with AsyncTestClient(create_app(keyed(database_url, BOTH))) as client:
        decision = await client.post("/v1/route", json={"task": TASK}, headers=bearer(ACME))
        decision_id = decision.json()["decision_id"]
    moved = {ACME: "globex", GLOBEX: "globex"}
    async with AsyncTestClient(create_app(keyed(database_url, moved))) as client:
        # acme's decision is no longer visible with the key that now belongs to globex
        found = await client.get(f"/v1/decisions/{decision_id}", headers=bearer(ACME))
        assert found.status_code == 404


async def test_a_revoked_key_is_refused_in_running_services_and_after_restart(
    database_url: str, warnings: list[str]
) -> None:
    settings = keyed(database_url, BOTH)
    async with AsyncTestClient(create_app(settings)) as client:
        assert await route_status(client, bearer(GLOBEX)) == 200
        key_id = await key_id_of(database_url, "globex")
        assert GLOBEX not in await keys_command("list", "--database-url", database_url)
        await keys_command("revoke", key_id, "--database-url", database_url)
        for _ in range(50):  # the services poll every 0.1 s here
            if await route_status(client, bearer(GLOBEX)) == 401:
                break
            await asyncio.sleep(0.1)
        assert await route_status(client, bearer(GLOBEX)) == 401
        assert await route_status(client, bearer(ACME)) == 200
    warnings.clear()
    async with AsyncTestClient(create_app(settings)) as client:  # still configured
        assert await route_status(client, bearer(GLOBEX)) == 401
        assert await route_status(client, bearer(ACME)) == 200
    assert any(key_id in w and "revoked but still configured" in w for w in warnings), warnings


async def test_a_revocation_survives_a_server_secret_rotation(database_url: str) -> None:
    first = keyed(database_url, BOTH, ROUTER__SECURITY__SECRET="first-secret")
    async with AsyncTestClient(create_app(first)):
        key_id = await key_id_of(database_url, "globex")
        await keys_command("revoke", key_id, "--database-url", database_url)
    rotated = keyed(database_url, BOTH, ROUTER__SECURITY__SECRET="second-secret",
                    ROUTER__SECURITY__PREVIOUS_SECRETS='["first-secret"]')
    async with AsyncTestClient(create_app(rotated)) as client:
        assert await route_status(client, bearer(GLOBEX)) == 401
        assert await route_status(client, bearer(ACME)) == 200


async def test_keys_are_stored_as_keyed_hashes_only(database_url: str) -> None:
    settings = keyed(database_url, BOTH)
    async with AsyncTestClient(create_app(settings)):
        pass
    engine = create_engine(settings.storage.url)
    try:
        async with engine.connect() as conn:
            stored = set((await conn.scalars(text("SELECT key_hash FROM api_keys"))).all())
    finally:
        await engine.dispose()
    assert len(stored) == 2
    for key in BOTH:  # a bare SHA-256 could be checked against guessed keys offline
        assert hashlib.sha256(key.encode()).hexdigest() not in stored


async def test_no_route_but_probes_and_metrics_answers_without_a_key(database_url: str) -> None:
    app = create_app(keyed(database_url, BOTH))
    async with AsyncTestClient(app) as client:
        checked: set[str] = set()
        for route in app.routes:
            path = re.sub(r"\{(\w+):\w+\}", "x", route.path)
            for method in sorted(getattr(route, "methods", ())):
                if method == "OPTIONS":
                    continue  # CORS preflight: browsers send it without credentials
                response = await client.request(method, path, json={"task": TASK})
                expected = 200 if route.path in OPEN_PATHS else 401
                assert response.status_code == expected, (method, path, response.text)
                checked.add(route.path)
        # The walk covers the API, the admin routes and the OpenAPI document.
        assert {"/v1/route", "/v1/feedback", "/v1/models", "/v1/stats", "/v1/admin/models/rollback",
                "/schema/openapi.json"} <= checked
        assert (await client.get("/v1/models", headers=bearer(ACME))).status_code == 200
        schema = await client.get("/schema/openapi.json", headers={"X-API-Key": ACME})
        assert schema.status_code == 200


async def test_an_empty_x_api_key_does_not_hide_a_valid_bearer_key(database_url: str) -> None:
    async with AsyncTestClient(create_app(keyed(database_url, BOTH))) as client:
        assert await route_status(client, {"X-API-Key": "", **bearer(ACME)}) == 200
        assert await route_status(client, {"X-API-Key": " ", **bearer(ACME)}) == 200
        assert await route_status(client, {"X-API-Key": ""}) == 401
