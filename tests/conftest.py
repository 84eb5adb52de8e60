"""Shared fixtures: settings on a temporary SQLite file or a fresh PostgreSQL database.

PostgreSQL tests run against ``ROUTER_TEST_POSTGRES_URL`` (default: the local server's ``test``
database). In CI (``CI=true``) an unreachable server fails the run; elsewhere those tests skip
with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from router.app import create_app
from router.logs import RouterFormatter
from router.settings import Settings
from router.storage.database import create_engine, migrate
from tests.support import make_settings

POSTGRES_ADMIN_URL = os.environ.get(
    "ROUTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """A command run in-process (router.cli.main) sets up logging (router/logs.py) as its own
    process would: take its handler off the root logger, and the level back, after the test."""
    root = logging.getLogger()
    level = root.level
    yield
    root.setLevel(level)
    for handler in root.handlers[:]:
        if isinstance(handler.formatter, RouterFormatter):
            root.removeHandler(handler)


def _postgres_reachable() -> str | None:
    try:
        import asyncpg

        async def probe() -> None:
            conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=3)
            await conn.close()

        asyncio.run(probe())
    except Exception as exc:  # any failure means "not reachable" for the skip decision
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    problem = _postgres_reachable()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must be reachable in CI at {POSTGRES_ADMIN_URL}: {problem}")
        pytest.skip(f"no PostgreSQL server at {POSTGRES_ADMIN_URL} ({problem})")
    return POSTGRES_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import asyncpg

    name = f"router_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(postgres_admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    base = postgres_admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/router.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on ``database_url`` with the schema migrated."""
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[AsyncTestClient[object]]:
    async with AsyncTestClient(create_app(settings)) as test_client:
        yield test_client
