"""Per-tenant decision counts, kept as decisions are logged (``GET /v1/stats``).

Each process counts the decisions it logged, per tenant, and adds them to ``tenants.decisions``
every ``flush_interval_s`` and at shutdown; every process (and replica) adds its own, so the
row holds every decision of the tenant. ``GET /v1/stats`` reads that one row and adds what this
process has not written yet: no scan of the log. A process killed with SIGKILL loses the
counts of its last interval (the decisions themselves are in the log).
"""

from __future__ import annotations

import asyncio
import logging

from router.errors import StorageUnavailableError
from router.storage.repository import EventLog

logger = logging.getLogger(__name__)


class DecisionCounter:
    """Decisions this process logged per tenant, until they are added to the database."""

    def __init__(self, log: EventLog, *, flush_interval_s: float) -> None:
        self.log = log
        self.flush_interval_s = flush_interval_s
        self._pending: dict[str, int] = {}
        # A total read while a flush commits must count those decisions exactly once.
        self._lock = asyncio.Lock()

    def add(self, tenant_id: str) -> None:
        """Count one decision of ``tenant_id`` that was just logged."""
        self._pending[tenant_id] = self._pending.get(tenant_id, 0) + 1

    async def total(self, tenant_id: str) -> int:
        """Every logged decision of ``tenant_id``: the stored count plus this process's
        unwritten ones (other processes' unwritten ones appear within their interval)."""
        async with self._lock:
            return await self.log.tenant_decisions(tenant_id) + self._pending.get(tenant_id, 0)

    async def flush(self) -> None:
        """Add the counts logged since the last flush to the database."""
        async with self._lock:
            if not self._pending:
                return
            pending, self._pending = self._pending, {}
            try:
                await self.log.add_decision_counts(pending)
            except Exception:
                for tenant, n in pending.items():  # kept for the next flush
                    self._pending[tenant] = self._pending.get(tenant, 0) + n
                raise

    async def flush_forever(self) -> None:
        """Background task: :meth:`flush` every ``flush_interval_s``."""
        while True:
            await asyncio.sleep(self.flush_interval_s)
            try:
                # Shielded: cancelling this task at shutdown while a flush is writing must not
                # drop the counts it took (the write may still commit); the shutdown's own
                # flush waits for it on the lock, then writes the rest.
                await asyncio.shield(self.flush())
            except StorageUnavailableError:
                pass  # the event log logs the outage, once, and when it ends
            except Exception:
                logger.exception("adding the tenants' decision counts failed; retrying")
