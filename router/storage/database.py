"""Engine creation (SQLite pragmas, msgspec JSON) and migrations to the newest schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def json_dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def create_engine(
    url: str, *, echo: bool = False, pool_size: int = 10, timeout_s: float | None = None,
    sqlite_checkpoints: bool = True,
) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys.

    ``timeout_s`` bounds every wait for the database (None: the drivers' defaults): PostgreSQL's
    statement and lock timeouts, the connect and pool checkout waits, and SQLite's busy timeout
    (carried in the URL, so that every connection to the file has it). Without
    ``sqlite_checkpoints`` the engine's SQLite connections never checkpoint the WAL: the
    service's writer process runs every checkpoint (router/storage/wal.py)."""
    options: dict[str, Any] = {
        "echo": echo,
        "json_serializer": json_dumps,
        "json_deserializer": msgspec.json.decode,
    }
    parsed = make_url(url)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if not is_sqlite:
        options["pool_size"] = pool_size
        options["pool_pre_ping"] = True
        if timeout_s is not None:
            milliseconds = str(max(1, round(timeout_s * 1000)))
            options["pool_timeout"] = timeout_s
            options["connect_args"] = {
                "timeout": timeout_s,
                "command_timeout": timeout_s + 1.0,  # the server's own timeouts fire first
                "server_settings": {
                    "statement_timeout": milliseconds, "lock_timeout": milliseconds
                },
            }
    elif timeout_s is not None:
        parsed = parsed.update_query_dict({"timeout": str(timeout_s)})
    engine = create_async_engine(parsed, **options)
    if is_sqlite:
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        if not sqlite_checkpoints:
            event.listen(engine.sync_engine, "connect", no_autocheckpoint)
    return engine


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; synchronous=NORMAL in WAL mode loses nothing a
    # process crash could take (only an OS crash can drop the last commits). The busy timeout
    # is the URL's ``timeout`` (create_engine), else sqlite3's default of 5 s.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def sqlite_file_url(url: URL) -> URL | None:
    """The synchronous (pysqlite) URL of a file-backed SQLite ``url``; ``None`` otherwise (an
    in-memory database is private to its connection: another connection sees another one)."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    return url.set(drivername="sqlite")


def sqlite_sync_engine(
    url: URL, *, pragmas: Callable[[Any, Any], None] = sqlite_pragmas
) -> Engine:
    """A synchronous engine of one connection on the SQLite file ``url``, with the async
    engine's JSON serializer and ``pragmas`` run on connect."""
    engine = create_sync_engine(
        url,
        json_serializer=json_dumps,
        json_deserializer=msgspec.json.decode,
        poolclass=QueuePool,
        pool_size=1,
        max_overflow=0,
        connect_args={"check_same_thread": False},
    )
    event.listen(engine, "connect", pragmas)
    return engine


def no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    """A connection whose commits never run a WAL checkpoint (another one runs them)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":  # a migration may rewrite a large table
        connection.execute(text("SET LOCAL statement_timeout = 0"))
        connection.execute(text("SET LOCAL lock_timeout = 0"))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the database schema to the newest migration (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


@asynccontextmanager
async def connection(
    engine: AsyncEngine, *, write: bool = False, what: str = "the event log"
) -> AsyncIterator[AsyncConnection]:
    """A connection of ``engine`` (in one transaction with ``write``); an unavailable database
    raises StorageUnavailableError (answered 503) naming ``what``, without the database's text."""
    # Imported here: the SQLite writer process imports this module and has no use for the
    # service's errors (and Litestar, which they import).
    from router.errors import StorageUnavailableError

    try:
        if write:
            async with engine.begin() as conn:
                yield conn
        else:
            async with engine.connect() as conn:
                yield conn
    except (OperationalError, DBAPIError) as exc:
        raise StorageUnavailableError(f"{what} is unavailable") from exc
