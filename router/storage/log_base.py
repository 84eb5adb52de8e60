"""What every part of the event log shares: the engine, its transactions, and the one place where
database errors become :mod:`router.errors`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from sqlalchemy import select
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from router.errors import StorageUnavailableError, UnstorableValueError
from router.storage.outage import OutageLog
from router.storage.writer_client import DuplicateWriteError


class DuplicateKeyError(Exception):
    """An insert collided with an existing primary or unique key."""


def refused_value(exc: DBAPIError) -> bool:
    """Whether the database refused a value (SQLSTATE class 22, "data exception": e.g. NUL in
    PostgreSQL text) rather than failing: the request is at fault, and retrying cannot help."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(exc, DataError) or (isinstance(sqlstate, str) and sqlstate.startswith("22"))


@contextmanager
def storage_errors(outage: OutageLog) -> Iterator[None]:
    """Database errors as the service's: a unique-key clash, a value the database refuses, and
    an unavailable database (a failed or timed-out statement, a refused connection, the SQLite
    writer process gone); ``outage`` logs the outage once."""
    try:
        yield
    except IntegrityError as exc:
        raise DuplicateKeyError(str(exc.orig)) from exc
    except DuplicateWriteError as exc:
        raise DuplicateKeyError(str(exc)) from exc
    except (OperationalError, DBAPIError, StorageUnavailableError, OSError, TimeoutError) as exc:
        if isinstance(exc, DBAPIError) and refused_value(exc):
            outage.succeeded()  # the database answered: the request is at fault
            raise UnstorableValueError(
                "the event log cannot store a value of this request", field="(body)"
            ) from exc
        raise outage.failed(exc) from exc
    outage.succeeded()


class LogDatabase:
    """The event log's engine and transactions (PostgreSQL, or SQLite through aiosqlite)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.outage = OutageLog()
        # SQLite has one writer at a time; queueing this process's writers here, in order,
        # avoids its busy handler's sleep-and-retry back-off, which turned contention into
        # second-long tails.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @asynccontextmanager
    async def _transaction(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        lock = self._write_lock if write else None
        with storage_errors(self.outage):
            if lock is None:
                async with self.engine.begin() as connection:
                    yield connection
            else:
                async with lock, self.engine.begin() as connection:
                    yield connection

    async def ping(self) -> None:
        async with self._transaction() as conn:
            await conn.execute(select(1))
