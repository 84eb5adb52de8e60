"""Group commit of decisions: concurrent route calls share one transaction.

Each caller still returns only after its own row is committed (persist, then respond), but
under load one commit carries many decisions, so the per-request cost of the transaction (one
round trip to the SQLite writer process, or the async engine's statement on PostgreSQL) is paid
once per batch.

Two batches may be in flight at once: while the writer commits one, the next is already on its
way, so the writer never waits for the event loop to notice an answer before it gets more work
(with one in flight, the loop sat idle waiting for the writer process's round trip).
"""

from __future__ import annotations

import asyncio

from router.errors import InvalidRequestError
from router.storage.repository import DuplicateKeyError, EventLog
from router.storage.rows import DecisionRow

MAX_BATCH = 128
MAX_IN_FLIGHT = 2  # batches being written at once


class DecisionWriter:
    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._pending: list[tuple[DecisionRow, asyncio.Future[None]]] = []
        self._writing = 0  # drain tasks started and not yet past their last batch
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done

    async def insert(self, row: DecisionRow) -> None:
        """Insert one decision row; returns once it is committed (raises what the insert
        raised, e.g. DuplicateKeyError for a decision id that already exists, or
        UnstorableValueError for a value the database refuses)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if self._writing < MAX_IN_FLIGHT:
            # Counted here and uncounted by the drain itself when it finds nothing left, with no
            # await in between: a task's done callbacks run a turn later, after callers woken
            # by its last batch, whose next insert must not count a finished drain.
            self._writing += 1
            drain = asyncio.create_task(self._write_all(), name="decision-writer")
            self._tasks.add(drain)
            drain.add_done_callback(self._tasks.discard)
        await future

    async def _write_all(self) -> None:
        try:
            while self._pending:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                await self._write(batch)
        finally:
            self._writing -= 1

    async def _write(self, batch: list[tuple[DecisionRow, asyncio.Future[None]]]) -> None:
        try:
            await self.log.insert_decisions([row for row, _ in batch])
        except (DuplicateKeyError, InvalidRequestError):
            # One row collided (a request_id racing with itself) or holds a value the database
            # refuses: write each row alone, so that only that row's caller gets the error and
            # no other request (of this tenant or another) fails with it.
            for row, future in batch:
                await self._write_one(row, future)
            return
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    async def _write_one(self, row: DecisionRow, future: asyncio.Future[None]) -> None:
        try:
            await self.log.insert_decisions([row])
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(None)
