from __future__ import annotations

import asyncio
from typing import Any

import pytest

from router.storage.batching import DecisionWriter
from router.storage.repository import DuplicateKeyError


class FakeLog:
    """Records committed batches; rejects a batch that holds an id seen before."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.ids: set[str] = set()

    async def insert_decisions(self, rows: list[dict[str, Any]]) -> None:
        await asyncio.sleep(0.01)  # a commit takes time; callers queue meanwhile
        ids = [row["id"] for row in rows]
        if self.ids & set(ids) or len(set(ids)) != len(ids):
            raise DuplicateKeyError("duplicate id")
        self.ids |= set(ids)
        self.batches.append(ids)


async def test_concurrent_inserts_share_commits() -> None:
    log = FakeLog()
    writer = DecisionWriter(log)  # type: ignore[arg-type]
    await asyncio.gather(*(writer.insert({"id": f"d{i}"}) for i in range(50)))
    assert log.ids == {f"d{i}" for i in range(50)}
    assert len(log.batches) <= 3


async def test_a_duplicate_fails_alone() -> None:
    log = FakeLog()
    writer = DecisionWriter(log)  # type: ignore[arg-type]
    await writer.insert({"id": "taken"})
    results = await asyncio.gather(
        *(writer.insert({"id": i}) for i in ["a", "taken", "b"]), return_exceptions=True
    )
    assert results[0] is None
    assert isinstance(results[1], DuplicateKeyError)
    assert results[2] is None
    assert {"a", "b"} <= log.ids


async def test_storage_errors_reach_every_caller() -> None:
    class Broken(FakeLog):
        async def insert_decisions(self, rows: list[dict[str, Any]]) -> None:
            raise RuntimeError("disk full")

    writer = DecisionWriter(Broken())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="disk full"):
        await writer.insert({"id": "x"})
