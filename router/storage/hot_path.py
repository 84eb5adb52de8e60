"""The event log's request-path statements: a route's decision insert, a feedback's look-ups and
outcome insert.

One write path per database. PostgreSQL: the async engine. A SQLite file: the writer process
(router/storage/writer_process.py) commits every decision batch and outcome, and runs the WAL
checkpoints; if it dies, the next write starts a new one. An in-memory SQLite database (tests) is
private to its connection, so no other process can write it: there the async engine writes.

A SQLite file's point look-ups (a feedback's decision and outcome, a repeated ``request_id``)
run on a connection of the event loop's own thread: in WAL mode a read never waits for the
writer, and through aiosqlite the same look-up cost the loop more than twice as much CPU per
feedback (docs/decisions/sqlite-write-path.md). That connection never waits: if SQLite answers
SQLITE_BUSY (rare for a WAL reader), the look-up runs on the async engine instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Engine, Select, bindparam, exists, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from router.storage.database import sqlite_file_url, sqlite_pragmas, sqlite_sync_engine
from router.storage.log_base import DuplicateKeyError, LogDatabase, storage_errors
from router.storage.models import Decision, Outcome
from router.storage.records import DecisionRecord, OutcomeRecord, as_utc
from router.storage.rows import DecisionRow, OutcomeRow
from router.storage.wal import CHECKPOINT_EVERY
from router.storage.writer_client import WriterProcess

# Point look-ups of the feedback path, built once (SQLAlchemy caches their compiled SQL).
_DECISION_BY_ID = select(
    *[getattr(Decision, name) for name in DecisionRecord.__struct_fields__]
).where(
    Decision.id == bindparam("decision_id"), Decision.tenant_id == bindparam("tenant_id")
)
_OUTCOME_BY_DECISION = select(
    *[getattr(Outcome, name) for name in OutcomeRecord.__struct_fields__]
).where(Outcome.decision_id == bindparam("decision_id"))

_OUTCOMES = Outcome.metadata.tables["outcomes"]
_OUTCOME_COLUMNS = [_OUTCOMES.c[name] for name in OutcomeRow.__struct_fields__]
# An outcome for a decision that has none yet. A duplicate selects no row, so PostgreSQL does
# not evaluate the sequence default for it: no number is taken (ON CONFLICT DO NOTHING would
# take one). Two identical posts racing still meet the unique constraint (DuplicateKeyError).
_INSERT_NEW_OUTCOME = (
    insert(Outcome)
    .from_select(
        [c.name for c in _OUTCOME_COLUMNS],
        select(*[bindparam(c.name, type_=c.type) for c in _OUTCOME_COLUMNS]).where(
            ~exists().where(Outcome.decision_id == bindparam("decision_id"))
        ),
    )
    .returning(Outcome.seq)
)


def _reader_pragmas(dbapi_connection: Any, record: Any) -> None:
    sqlite_pragmas(dbapi_connection, record)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")  # SQLITE_BUSY at once: the loop never waits
    cursor.close()


def _is_busy(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "sqlite_errorcode", None)
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _ReaderBusyError(Exception):
    """SQLite refused a look-up on the loop's connection; nothing was read."""


class HotPath(LogDatabase):
    """Decision and outcome inserts and the point look-ups of a feedback call."""

    def __init__(self, engine: AsyncEngine, *, checkpoint_every: int | None = None) -> None:
        super().__init__(engine)
        file_url = sqlite_file_url(engine.url)
        # A SQLite file: the writer process, started by start() or the first write, with a WAL
        # checkpoint every ``checkpoint_every`` commits.
        every = CHECKPOINT_EVERY if checkpoint_every is None else checkpoint_every
        self.writer = None if file_url is None else WriterProcess(file_url, checkpoint_every=every)
        self._reader = None if file_url is None else sqlite_sync_engine(
            file_url, pragmas=_reader_pragmas)
        self._reader_connection: Connection | None = None
        self.loop_reads = 0  # point look-ups on the loop's connection
        self.busy_reads = 0  # ... that SQLite refused there, run on the async engine instead

    async def start(self) -> None:
        """Start the SQLite writer process now (raises StorageUnavailableError when it cannot
        open the database), so that a broken database fails the service's start."""
        if self.writer is not None:
            with storage_errors(self.outage):
                await self.writer.start()

    async def aclose(self) -> None:
        """Stop the writer process after its last commit (the engine is the caller's)."""
        if self.writer is not None:
            await self.writer.close()
        if self._reader_connection is not None:
            self._reader_connection.close()
            self._reader_connection = None
        if self._reader is not None:
            self._reader.dispose()

    async def insert_decisions(self, rows: Sequence[DecisionRow]) -> None:
        """Insert decision rows in one transaction (all or none); DuplicateKeyError when one
        holds a taken id."""
        if self.writer is not None:
            with storage_errors(self.outage):
                await self.writer.insert_decisions(rows)
            return
        async with self._transaction(write=True) as conn:
            await conn.execute(insert(Decision), [row.columns() for row in rows])

    async def insert_outcome(self, row: OutcomeRow) -> int:
        """Append an outcome; returns its sequence number. Raises DuplicateKeyError when the
        decision already has one."""
        if self.writer is not None:
            with storage_errors(self.outage):
                return await self.writer.insert_outcome(row)
        async with self._transaction(write=True) as conn:
            seq = (await conn.execute(_INSERT_NEW_OUTCOME, row.columns())).scalar_one_or_none()
        if seq is None:
            raise DuplicateKeyError(f"decision {row.decision_id} already has an outcome")
        return int(seq)

    async def set_code_metrics(self, decision_id: str, metrics: dict[str, object]) -> None:
        """Fill in the code metrics of an outcome stored without them (they are measured after
        the outcome is stored, so a duplicate post never measures)."""
        statement = (
            update(Outcome).where(Outcome.decision_id == decision_id).values(code_metrics=metrics)
        )
        async with self._transaction(write=True) as conn:
            await conn.execute(statement)

    async def get_decision(self, tenant_id: str, decision_id: str) -> DecisionRecord | None:
        values = await self._point_read(
            _DECISION_BY_ID, {"decision_id": decision_id, "tenant_id": tenant_id})
        if values is None:
            return None
        values["created_at"] = as_utc(values["created_at"])
        return msgspec.convert(values, DecisionRecord)

    async def get_outcome(self, decision_id: str) -> OutcomeRecord | None:
        values = await self._point_read(_OUTCOME_BY_DECISION, {"decision_id": decision_id})
        return None if values is None else msgspec.convert(values, OutcomeRecord)

    async def _point_read(
        self, statement: Select[Any], parameters: Mapping[str, str]
    ) -> dict[str, Any] | None:
        """The first row of ``statement``: on the loop's connection (a SQLite file), else, or
        when SQLite refuses it there, on the async engine."""
        if self._reader is not None:
            try:
                with storage_errors(self.outage):
                    return self._read_on_loop(self._reader, statement, parameters)
            except _ReaderBusyError:
                self.busy_reads += 1
        async with self._transaction() as conn:
            row = (await conn.execute(statement, parameters)).first()
        return None if row is None else row._asdict()

    def _read_on_loop(
        self, reader: Engine, statement: Select[Any], parameters: Mapping[str, str]
    ) -> dict[str, Any] | None:
        connection = self._reader_connection
        if connection is None:
            connection = self._reader_connection = reader.connect()
        try:
            with connection.begin():
                row = connection.execute(statement, parameters).first()
        except OperationalError as exc:
            if _is_busy(exc):
                raise _ReaderBusyError from exc
            raise
        self.loop_reads += 1
        return None if row is None else row._asdict()
