"""Hot-path statements on a file-backed SQLite event log, each in one hand-off to a thread.

They run on the event loop's own thread first (router/storage/inline_sqlite.py); these threads
take a statement when that would have to wait: another process holds SQLite's lock.

Through aiosqlite every DBAPI call of a statement (begin, cursor, execute, fetch, close, commit)
is a round trip to aiosqlite's thread: a queue put, a future, a loop wake-up and a GIL hand-over
each. Under load those hand-offs cost the event loop more than the statement itself (``router
bench``, README "Benchmark"). Here a whole transaction runs as one function in a dedicated thread
on a synchronous SQLAlchemy connection of the same database file: the same dialect, types, JSON
serializer and pragmas, so rows read back through the async engine exactly as before. The event
log keeps two: a writer (decision and outcome inserts, serialised with the log's other writes)
and a reader (the point look-ups of a feedback call), so a look-up never queues behind a commit.

Only file databases get a writer: an in-memory SQLite database is private to its connection, so a
second connection would see another database (:func:`sqlite_file_url` returns ``None``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

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


def sqlite_sync_engine(
    url: URL, *, pragmas: Callable[[Any, Any], None] = sqlite_pragmas
) -> Engine:
    """A synchronous engine of one connection on the SQLite file ``url``, with the async
    engine's JSON serializer and ``pragmas`` run on connect."""
    engine = create_engine(
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


class SQLiteThread:
    """Runs transactions on one synchronous connection in one thread, one at a time.

    Callers serialise their writes themselves (the event log's write lock), so a writer thread
    never waits on SQLite's busy handler for a writer of this process.
    """

    def __init__(self, url: URL, *, name: str) -> None:
        self._engine = sqlite_sync_engine(url)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` inside one transaction (committed when it returns, rolled back
        when it raises), in this thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, work)

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        with self._engine.begin() as connection:
            return work(connection)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._engine.dispose()
