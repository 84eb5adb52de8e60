"""A database that is locked or refuses connections gives a prompt 503 with ``Retry-After``.

No request hangs past ``[storage] statement_timeout_s``, no 503 body echoes the database's own
error text, and an outage is logged once when it starts and once when it ends (not a traceback
per tail pass).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from router.app import create_app
from tests.support import make_settings

TASK = {"type": "backend", "language": "python", "description": "Build a REST API with JWT auth"}
TIMEOUT_S = "0.5"


def dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def assert_retry_later(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    body = response.json()
    assert body["type"].endswith("storage-unavailable")
    text = response.text.lower()
    for raw in ("lock", "cancel", "timeout", "sqlstate", "asyncpg", "sqlite", "accepting"):
        assert raw not in text, response.text


async def test_a_locked_outcome_table_gives_503_with_retry_after_not_a_hang(
    database_url: str,
) -> None:
    settings = make_settings(database_url, ROUTER__STORAGE__STATEMENT_TIMEOUT_S=TIMEOUT_S)
    async with AsyncTestClient(create_app(settings)) as client:
        decision = (await client.post("/v1/route", json={"task": TASK})).json()
        body = {"decision_id": decision["decision_id"], "outcome": "approved"}
        release: asyncio.Event = asyncio.Event()

        async def hold_lock(locked: asyncio.Event) -> None:
            if database_url.startswith("sqlite"):
                path = database_url.split("///", 1)[1]
                other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                other.execute("BEGIN EXCLUSIVE")
                locked.set()
                await asyncio.wait_for(release.wait(), 10)
                other.execute("COMMIT")
                other.close()
                return
            conn = await asyncpg.connect(dsn(database_url))
            async with conn.transaction():
                await conn.execute("LOCK TABLE outcomes IN ACCESS EXCLUSIVE MODE")
                locked.set()
                await asyncio.wait_for(release.wait(), 10)
            await conn.close()

        locked = asyncio.Event()
        holder = asyncio.create_task(hold_lock(locked))
        await locked.wait()
        try:
            started = time.monotonic()
            response = await client.post("/v1/feedback", json=body)
            assert time.monotonic() - started < 3.0
            assert_retry_later(response)
            if database_url.startswith("postgresql"):
                started = time.monotonic()
                ready = await client.get("/ready")
                assert time.monotonic() - started < 3.0
                assert ready.status_code == 503
                assert ready.json()["log_outcomes"] is None
        finally:
            release.set()
            await holder
        retried = await client.post("/v1/feedback", json=body)
        assert retried.status_code == 200, retried.text
        assert retried.json()["duplicate"] is False


async def test_an_outage_is_answered_503_and_logged_once_each_way(
    postgres_url: str, postgres_admin_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = postgres_url.rsplit("/", 1)[1]
    settings = make_settings(postgres_url, ROUTER__STORAGE__STATEMENT_TIMEOUT_S=TIMEOUT_S)
    admin = await asyncpg.connect(postgres_admin_url)
    try:
        async with AsyncTestClient(create_app(settings)) as client:
            decision = (await client.post("/v1/route", json={"task": TASK})).json()
            caplog.clear()
            caplog.set_level(logging.INFO)
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
            deadline = time.monotonic() + 1.5  # six tail passes
            while time.monotonic() < deadline:
                for response in (
                    await client.post("/v1/route", json={"task": TASK}),
                    await client.post(
                        "/v1/feedback",
                        json={"decision_id": decision["decision_id"], "outcome": "approved"},
                    ),
                    await client.get("/ready"),
                    await client.get("/v1/models"),
                ):
                    assert response.status_code == 503, response.text
                    assert "retry-after" in response.headers
                await asyncio.sleep(0.1)
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            for _ in range(40):
                if (await client.get("/ready")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # two tail passes on the recovered database
            assert (await client.get("/ready")).status_code == 200
            records = [r for r in caplog.records if r.name.startswith("router")]
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    problems = [r for r in records if r.levelno >= logging.WARNING or r.exc_info]
    assert len(problems) == 1, [r.getMessage() for r in problems]
    assert "unavailable" in problems[0].getMessage()
    assert problems[0].exc_info is None
    recovered = [r for r in records if "available again" in r.getMessage()]
    assert len(recovered) == 1, [r.getMessage() for r in records]
