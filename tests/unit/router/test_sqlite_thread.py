"""The SQLite writer and reader threads: which URLs get them, commit, rollback, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from router.errors import StorageUnavailableError
from router.storage.database import create_engine, migrate
from router.storage.repository import DuplicateKeyError, EventLog
from router.storage.sqlite_thread import sqlite_file_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:////tmp/x/log.db", "sqlite:////tmp/x/log.db"),
        ("sqlite+aiosqlite:///relative.db", "sqlite:///relative.db"),
        ("sqlite+aiosqlite://", None),
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite+aiosqlite:///file:log?mode=memory&uri=true", None),
        ("postgresql+asyncpg://postgres@127.0.0.1/test", None),
    ],
)
def test_only_file_databases_get_threads(url: str, expected: str | None) -> None:
    found = sqlite_file_url(make_url(url))
    assert (None if found is None else found.render_as_string()) == expected


async def test_writer_transactions_commit_roll_back_and_translate_errors(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/log.db")
    log = EventLog(engine)
    try:
        await migrate(engine)
        assert log._writer is not None

        def add(conn: Connection) -> int:
            conn.execute(text("INSERT INTO tenants (id, created_at) VALUES ('t1', '2026-01-01')"))
            return 1

        assert await log._write(add) == 1
        with pytest.raises(DuplicateKeyError):
            await log._write(add)

        def add_then_fail(conn: Connection) -> None:
            conn.execute(text("INSERT INTO tenants (id, created_at) VALUES ('t2', '2026-01-01')"))
            conn.execute(text("SELECT * FROM no_such_table"))

        with pytest.raises(StorageUnavailableError):
            await log._write(add_then_fail)
        # The async engine sees the committed row and not the rolled-back one.
        async with engine.connect() as conn:
            ids = (await conn.execute(text("SELECT id FROM tenants ORDER BY id"))).scalars().all()
        assert list(ids) == ["t1"]

        def tenant_ids(conn: Connection) -> list[str]:
            return list(conn.execute(text("SELECT id FROM tenants ORDER BY id")).scalars())

        assert log._reader is not None
        assert await log._read(tenant_ids) == ["t1"]
    finally:
        log.close()
        await engine.dispose()
