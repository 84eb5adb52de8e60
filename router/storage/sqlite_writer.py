"""Writes to a file-backed SQLite event log from one dedicated thread, one hand-off per write.

Through aiosqlite every DBAPI call of a write (begin, cursor, execute, close, commit) is a round
trip to aiosqlite's thread: a queue put, a future, a loop wake-up and a GIL hand-over each. Under
load those hand-offs cost the event loop more than the insert itself (``router bench``, README
"Benchmark"). Here a whole transaction runs as one function in a single worker thread on a
synchronous SQLAlchemy connection of the same database file: the same dialect, types, JSON
serializer and pragmas, so rows read back through the async engine exactly as before. The event
loop pays one hand-off per batch.

Only file databases get a writer: an in-memory SQLite database is private to its connection, so a
second connection would see another database (:func:`sqlite_file_url` returns ``None``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import msgspec
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.pool import QueuePool

from router.storage.database import json_dumps, sqlite_pragmas

T = TypeVar("T")


def sqlite_file_url(url: URL) -> URL | None:
    """The synchronous (pysqlite) URL of a file-backed SQLite ``url``; ``None`` otherwise."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    return url.set(drivername="sqlite")


class SQLiteWriter:
    """Runs write transactions on one synchronous connection in one thread.

    Callers serialise their writes themselves (the event log's write lock), so the thread never
    waits on SQLite's busy handler for a writer of this process.
    """

    def __init__(self, url: URL) -> None:
        self._engine: Engine = create_engine(
            url,
            json_serializer=json_dumps,
            json_deserializer=msgspec.json.decode,
            poolclass=QueuePool,
            pool_size=1,
            max_overflow=0,
        )
        event.listen(self._engine, "connect", sqlite_pragmas)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` inside one transaction (committed when it returns, rolled back
        when it raises), in the writer thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, work)

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        with self._engine.begin() as connection:
            return work(connection)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._engine.dispose()
