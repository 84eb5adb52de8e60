"""Group commit of decisions: concurrent route calls share one transaction.

Each caller still returns only after its own row is committed (durability is unchanged), but
under load one commit carries many decisions, so the per-request cost of the transaction, the
driver's thread hand-off and SQLAlchemy's statement setup is paid once per batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

from router.storage.repository import DuplicateKeyError, EventLog

MAX_BATCH = 128


class DecisionWriter:
    def __init__(self, log: EventLog) -> None:
        self.log = log
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._drain: asyncio.Task[None] | None = None

    async def insert(self, values: dict[str, Any]) -> None:
        """Insert one decision row; returns once it is committed (raises what the insert
        raised, e.g. DuplicateKeyError for a decision id that already exists)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((values, future))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._write_all(), name="decision-writer")
        await future

    async def _write_all(self) -> None:
        while self._pending:
            batch = self._pending[:MAX_BATCH]
            del self._pending[:MAX_BATCH]
            await self._write(batch)

    async def _write(self, batch: list[tuple[dict[str, Any], asyncio.Future[None]]]) -> None:
        try:
            await self.log.insert_decisions([values for values, _ in batch])
        except DuplicateKeyError:
            # One row collided (a request_id racing with itself): commit the others alone.
            for values, future in batch:
                await self._write_one(values, future)
            return
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    async def _write_one(self, values: dict[str, Any], future: asyncio.Future[None]) -> None:
        try:
            await self.log.insert_decisions([values])
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(None)
