from __future__ import annotations

import asyncio
from typing import Any

import pytest

from router.errors import UnstorableValueError
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


async def test_two_batches_are_written_at_once_and_no_more() -> None:
    class Gated(FakeLog):
        """Holds every commit until released; records how many run at once."""

        def __init__(self) -> None:
            super().__init__()
            self.release = asyncio.Event()
            self.running = 0
            self.most = 0

        async def insert_decisions(self, rows: list[dict[str, Any]]) -> None:
            self.running += 1
            self.most = max(self.most, self.running)
            await self.release.wait()
            self.running -= 1
            await super().insert_decisions(rows)

    log = Gated()
    writer = DecisionWriter(log)  # type: ignore[arg-type]
    first = asyncio.create_task(writer.insert({"id": "d0"}))
    await asyncio.sleep(0)
    await asyncio.sleep(0)  # d0's batch is being written
    second = [asyncio.create_task(writer.insert({"id": f"d{i}"})) for i in range(1, 6)]
    await asyncio.sleep(0.01)
    assert log.running == 2  # d0's batch, and d1-d5's beside it
    third = [asyncio.create_task(writer.insert({"id": f"d{i}"})) for i in range(6, 9)]
    await asyncio.sleep(0.01)
    assert log.running == 2  # d6-d8 wait for one of the two
    log.release.set()
    await asyncio.gather(first, *second, *third)
    assert log.most == 2
    assert sorted(log.batches) == [["d0"], ["d1", "d2", "d3", "d4", "d5"], ["d6", "d7", "d8"]]


async def test_an_insert_right_after_both_writers_finish_is_written() -> None:
    class Released(FakeLog):
        """Commits as soon as released, both batches in the same turn of the loop."""

        def __init__(self) -> None:
            super().__init__()
            self.release = asyncio.Event()

        async def insert_decisions(self, rows: list[dict[str, Any]]) -> None:
            await self.release.wait()
            self.batches.append([row["id"] for row in rows])
            self.ids |= {row["id"] for row in rows}

    log = Released()
    writer = DecisionWriter(log)  # type: ignore[arg-type]

    async def a_then_c() -> None:
        await writer.insert({"id": "a"})
        # Both writers have just finished (awaited in this task, as a route call does, so it
        # runs before the loop hears that they finished): this insert must start another.
        await writer.insert({"id": "c"})

    first = asyncio.create_task(a_then_c())
    await asyncio.sleep(0)
    second = asyncio.create_task(writer.insert({"id": "b"}))
    await asyncio.sleep(0.01)  # a's and b's batches are both being written
    log.release.set()
    await asyncio.wait_for(asyncio.gather(first, second), 1.0)
    assert log.ids == {"a", "b", "c"}


async def test_a_row_the_database_refuses_fails_alone() -> None:
    class Picky(FakeLog):
        """Refuses every batch that holds a NUL, as PostgreSQL refuses it in a text column."""

        async def insert_decisions(self, rows: list[dict[str, Any]]) -> None:
            if any("\x00" in row["id"] for row in rows):
                raise UnstorableValueError("NUL in a text column", field="(body)")
            await super().insert_decisions(rows)

    log = Picky()
    writer = DecisionWriter(log)  # type: ignore[arg-type]
    ids = [f"good-{i}" for i in range(10)] + ["bad\x00"] + [f"late-{i}" for i in range(10)]
    results = await asyncio.gather(*(writer.insert({"id": i}) for i in ids),
                                   return_exceptions=True)
    assert [type(r).__name__ for r in results if r is not None] == ["UnstorableValueError"]
    assert log.ids == {i for i in ids if "\x00" not in i}
