"""Hot-path statements on the event loop's own thread, for a file-backed SQLite event log.

The event log's point reads (a feedback's decision and outcome) run here first, right on the
loop's thread, and so do its hot-path writes (decision batches, outcomes) when the writer
process (router/storage/writer_process.py, the service's default) is off or has died; each goes
to the writer or reader thread (router/storage/sqlite_thread.py) only when this would have to
wait.

Why not always the threads: under ``router bench``'s load a decision batch handed to a thread
took 4-5 ms from hand-off to result, of which the SQLite work was under 2 ms; the rest was the
two threads taking turns at the GIL. With 16 connections, half of them waiting on that commit,
the event loop sat idle a quarter of the time.
Committing the batch right on the loop thread, through a connection that never waits (busy
timeout 0) and never checkpoints, took the same load from about 1,170 to 1,720 requests/s in
alternating runs (README "Benchmark"). What could make a commit slow stays off the loop:

- **Another writer.** Writers of this process queue on the event log's write lock and commit
  here when they hold it, so no writer of this process is mid-transaction then.
  A writer of another process (a second worker, ``router import``) makes SQLite answer
  ``SQLITE_BUSY`` at once, and :meth:`InlineSQLite.run` raises :class:`SQLiteBusyError`: the
  caller then takes the writer thread, which waits for the lock as before.
- **Checkpoints**, which copy the WAL into the database file and ``fsync`` it. This connection
  has ``wal_autocheckpoint=0``; after every :data:`CHECKPOINT_EVERY` commits :class:`InlineSQLite`
  runs a checkpoint in a thread of its own, in passes. The first ones, passive, run beside this
  process's writers and copy almost everything; the last holds the event log's write lock, so no
  writer of this process commits meanwhile, and copies the few frames committed during the
  others. Only a checkpoint that copied the whole WAL lets the next writer start the WAL over from
  its beginning: with passive checkpoints alone under a steady stream of commits that never
  happened, and the WAL grew without bound (927 MB after 20 s of ``/v1/route`` load, the database
  itself 285 MB), while each read that missed SQLite's page cache searched an ever longer WAL
  index, and route throughput fell with it.

With ``synchronous=NORMAL`` in WAL mode a commit writes the WAL without ``fsync``, so a commit is
CPU and a memory copy: a batch of 7-8 decisions takes about 0.7 ms on the loop. Durability is the
same as through the thread: a committed decision survives a crash of the process.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Connection, Table, insert, text
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.exc import OperationalError

from router.storage.database import sqlite_pragmas
from router.storage.sqlite_thread import SQLiteThread, sqlite_sync_engine

logger = logging.getLogger("router.storage")

T = TypeVar("T")

CHECKPOINT_EVERY = 256  # inline commits between checkpoints (about 9,000 WAL frames)
CATCH_UP_PASSES = 2  # passes beside the writers after the first, at most
CATCH_UP_FRAMES = 64  # frames left behind by a pass that are few enough to hold writers for


class PreparedInsert:
    """An INSERT of every column of ``table``, compiled once by SQLAlchemy for ``dialect``.

    :meth:`parameters` turns row dicts into the DBAPI's positional parameters with the
    dialect's own bind processors (JSON through the engine's serializer, datetimes in SQLite's
    storage format), so rows read back through the ORM exactly as if ``insert(table)`` had
    written them; it only skips SQLAlchemy's per-statement work on every batch.
    """

    def __init__(self, table: Table, dialect: Dialect) -> None:
        compiled = insert(table).compile(
            dialect=dialect, column_keys=[column.key for column in table.columns]
        )
        self.sql = str(compiled)
        names = compiled.positiontup or []
        processors: list[tuple[str, Callable[[Any], Any] | None]] = []
        for name in names:
            column_type = table.c[name].type
            processors.append((name, column_type.dialect_impl(dialect).bind_processor(dialect)))
        self._processors = processors

    def parameters(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """One tuple per row, in the statement's order; a missing key is NULL."""
        processors = self._processors
        return [
            tuple(
                row.get(name) if process is None else process(row.get(name))
                for name, process in processors
            )
            for row in rows
        ]


def _inline_pragmas(dbapi_connection: Any, record: Any) -> None:
    sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")  # another process writing: SQLITE_BUSY at once
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # checkpoints run in a thread instead
    cursor.close()


class CheckpointResult(NamedTuple):
    """What ``PRAGMA wal_checkpoint(PASSIVE)`` reports."""

    busy: int
    wal_frames: int  # frames in the WAL
    copied: int  # frames copied into the database file, this pass or earlier ones

    @property
    def complete(self) -> bool:
        return self.copied == self.wal_frames


def checkpoint_pass(connection: Connection) -> CheckpointResult:
    """Copy what it can of the WAL into the database file without waiting for anyone."""
    busy, wal_frames, copied = connection.execute(text("PRAGMA wal_checkpoint(PASSIVE)")).one()
    logger.debug("WAL checkpoint: busy %d, %d frames, %d copied", busy, wal_frames, copied)
    return CheckpointResult(busy, wal_frames, copied)


def _is_busy(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SQLiteBusyError(Exception):
    """Another connection holds SQLite's write lock (or, rarely, blocks a read): nothing was
    done; do the work where waiting is harmless."""


class InlineSQLite:
    """A synchronous SQLite connection for work done on the event loop's thread.

    Only the event loop's thread uses the connection, one call at a time (the loop runs one
    callback at a time); passive checkpoints run in a :class:`SQLiteThread` of their own.
    """

    def __init__(self, url: URL, write_lock: asyncio.Lock) -> None:
        self._engine = sqlite_sync_engine(url, pragmas=_inline_pragmas)
        self._checkpointer = SQLiteThread(url, name="sqlite-checkpoint")
        self._checkpoint: asyncio.Future[CheckpointResult] | None = None
        self._write_lock = write_lock  # held by this process's writers (the event log's)
        self._connection: Connection | None = None
        self._since_checkpoint = 0
        self.writes = 0  # write transactions committed here
        self.reads = 0
        self.busy = 0  # refused: another connection held SQLite's lock
        self.checkpoints = 0
        self.complete_checkpoints = 0  # the whole WAL copied: the next writer starts it over
        self.last_checkpoint: CheckpointResult | None = None

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    def run(self, work: Callable[[Connection], T], *, write: bool) -> T:
        """``work(connection)`` in one transaction, committed before this returns.

        Raises :class:`SQLiteBusyError`, with nothing done, when another connection holds
        SQLite's lock; SQLAlchemy's errors otherwise (the transaction is rolled back).
        """
        connection = self._connection
        if connection is None:
            connection = self._connection = self._engine.connect()
        try:
            with connection.begin():
                result = work(connection)
        except OperationalError as exc:
            if _is_busy(exc):
                self.busy += 1
                raise SQLiteBusyError(str(exc.orig)) from exc
            raise
        if not write:
            self.reads += 1
            return result
        self.writes += 1
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY and (
            self._checkpoint is None or self._checkpoint.done()
        ):
            self._since_checkpoint = 0
            self._checkpoint = asyncio.ensure_future(self._checkpoint_passes())
            self._checkpoint.add_done_callback(self._checkpoint_done)
        return result

    async def _checkpoint_passes(self) -> CheckpointResult:
        """Passes beside the writers, then one with the writers of this process held back,
        which copies what they committed during the others (see the module docstring)."""
        # A pass counts only the frames there were when it started, so it reports "complete"
        # even when commits went on meanwhile: the last pass always holds the writers back.
        # Passes beside the writers repeat while they leave many frames behind, so that the
        # writers wait only for a few frames' copy and fsync.
        previous = await self._checkpointer.run(checkpoint_pass)
        for _ in range(CATCH_UP_PASSES):
            result = await self._checkpointer.run(checkpoint_pass)
            behind = result.wal_frames - previous.wal_frames  # committed during the last pass
            previous = result
            if behind <= CATCH_UP_FRAMES:
                break
        async with self._write_lock:
            return await self._checkpointer.run(checkpoint_pass)

    def _checkpoint_done(self, future: asyncio.Future[CheckpointResult]) -> None:
        if future.cancelled():
            return
        error = future.exception()
        if error is not None:
            logger.warning("WAL checkpoint failed: %s", error)
            return
        result = future.result()
        self.checkpoints += 1
        self.last_checkpoint = result
        if result.complete:
            self.complete_checkpoints += 1
        else:  # another process is reading an older snapshot, or writing
            logger.debug("WAL checkpoint incomplete: %s", result)

    async def wait_checkpoint(self) -> None:
        """Wait for a running checkpoint to finish (for tests; ``close`` cancels one that is
        waiting for the writers, and the thread finishes a pass under way)."""
        if self._checkpoint is not None:
            await asyncio.wait([self._checkpoint])

    def close(self) -> None:
        if self._checkpoint is not None and not self._checkpoint.done():
            self._checkpoint.cancel()  # a pass under way in the thread still finishes there
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._checkpointer.close()
        self._engine.dispose()
