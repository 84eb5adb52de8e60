"""Per-tenant decision counts (router/services/tenant_stats.py): none lost when the periodic
flush is cancelled at shutdown while it writes."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from typing import Any, cast

from router.services.tenant_stats import DecisionCounter
from router.storage.repository import EventLog


class SlowLog:
    """Adds counts after a pause, as a database write under load does."""

    def __init__(self) -> None:
        self.stored: Counter[str] = Counter()
        self.writing = asyncio.Event()

    async def add_decision_counts(self, counts: Mapping[str, int]) -> None:
        self.writing.set()
        await asyncio.sleep(0.05)
        self.stored.update(counts)


async def test_a_flush_cancelled_at_shutdown_loses_no_count() -> None:
    log = SlowLog()
    counter = DecisionCounter(cast(EventLog, cast(Any, log)), flush_interval_s=0.001)
    for _ in range(30):
        counter.add("a")
    counter.add("b")
    task = asyncio.create_task(counter.flush_forever())
    await log.writing.wait()  # the periodic flush has taken the counts and is writing
    counter.add("a")
    task.cancel()  # shutdown, as the app's lifespan does
    await asyncio.gather(task, return_exceptions=True)
    await counter.flush()  # the shutdown's last flush
    assert log.stored == {"a": 31, "b": 1}
