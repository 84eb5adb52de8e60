"""Decision and outcome inserts committed by the SQLite writer process: the same stored rows
as the ORM's, duplicates, checkpoints, the process dying, start failures and shutdown."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from learners.decision import StoredFeatures
from router.errors import StorageUnavailableError
from router.storage.database import create_engine, migrate
from router.storage.models import CatalogVersion, Decision
from router.storage.repository import EventLog
from router.storage.writer_process import WriterProcess
from tests.unit.router.test_inline_sqlite import (
    check_a_duplicate_rolls_back_its_batch,
    check_outcomes_in_sequence,
    decision_row,
    outcome_values,
    stored_ids,
    wal_restarts,
)


async def _event_log(path: Path) -> EventLog:
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(CatalogVersion).values(
            fingerprint="fp", catalog=b"{}", created_at=datetime.now(UTC)))
    return EventLog(engine)


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EventLog]:
    event_log = await _event_log(tmp_path / "log.db")
    assert await event_log.start_writer_process(checkpoint_every=8)
    try:
        yield event_log
    finally:
        await event_log.aclose()
        await event_log.engine.dispose()


def _process(log: EventLog) -> WriterProcess:
    assert log.process is not None
    return log.process


async def test_process_rows_read_back_exactly_like_orm_inserts(log: EventLog) -> None:
    async with log.engine.begin() as conn:
        await conn.execute(insert(Decision), [decision_row("orm")])
    await log.insert_decisions([decision_row("process")])
    assert _process(log).stats.writes == 1
    assert log.inline is not None
    assert log.inline.writes == 0  # nothing committed on the loop's thread

    async with log.engine.connect() as conn:
        rows = {
            row["id"]: {k: v for k, v in row.items() if k not in ("id", "response")}
            for row in (await conn.execute(select(Decision))).mappings()
        }
        raw = {  # the stored text, not only what SQLAlchemy makes of it
            row[0]: row[1:]
            for row in await conn.execute(text(
                "SELECT id, created_at, request, features, explored, probabilities, "
                "model_versions, shadow_probabilities FROM decisions"))
        }
    assert rows["orm"] == rows["process"]
    assert raw["orm"] == raw["process"]
    assert raw["process"][1] == '{"task":{"type":"bugfix","description":"x \\u00e9"}}'
    stored = await log.get_decision("t1", "process")
    assert stored is not None
    assert stored.response == {"decision_id": "process", "nested": {"x": [1, 2.5, None]}}


async def test_outcomes_get_sequence_numbers_and_a_duplicate_is_refused(log: EventLog) -> None:
    await check_outcomes_in_sequence(log)
    assert _process(log).stats.writes == 3
    assert log.inline is not None
    assert (log.inline.writes, log.inline.reads) == (0, 1)  # the read runs on the loop


async def test_a_duplicate_rolls_back_the_whole_batch_and_the_process_goes_on(
    log: EventLog,
) -> None:
    await check_a_duplicate_rolls_back_its_batch(log)
    assert _process(log).stats.writes == 2


async def test_concurrent_calls_are_answered_in_order(log: EventLog) -> None:
    await log.insert_decisions([decision_row(f"d{i}") for i in range(20)])
    seqs = await asyncio.gather(
        *(log.insert_outcome(outcome_values(f"d{i}")) for i in range(20)),
        log.insert_decisions([decision_row("late")]),
    )
    assert seqs[:20] == list(range(1, 21))  # each caller got its own outcome's number
    events = await log.learn_events_after(0)
    assert [e.seq for e in events] == list(range(1, 21))


async def test_under_a_steady_stream_of_commits_the_process_keeps_the_wal_bounded(
    log: EventLog, tmp_path: Path
) -> None:
    namespaces = {f"ns{k}": {f"feature{j}": j / 7 for j in range(40)} for k in range(8)}
    wal_path = tmp_path / "log.db-wal"
    process = _process(log)
    sizes: list[tuple[int, int, int]] = []
    batches = 0
    marks = [4, 16]

    async def writer(name: str) -> None:
        nonlocal batches
        i = 0
        while marks:
            rows = [decision_row(f"{name}-{i}-{k}", features=StoredFeatures(
                namespaces=namespaces, complexity=0.5, prior_time_s=1.0)) for k in range(8)]
            await log.insert_decisions(rows)
            batches += 1
            i += 1
            if marks and process.stats.checkpoints >= marks[0]:
                marks.pop(0)
                sizes.append((batches, wal_path.stat().st_size, wal_restarts(wal_path)))

    await asyncio.gather(*(writer(f"w{n}") for n in range(3)))
    assert process.stats.complete_checkpoints == process.stats.checkpoints >= 16
    (batches_then, _, restarts_then), (batches_now, _, restarts_now) = sizes
    assert batches_now > 2 * batches_then
    # The WAL started over at most of the 12 checkpoints between the two marks (with passive
    # checkpoints alone it never does, and grows with every commit). Its file size is not the
    # measure: one slow fsync lets more commits into a cycle, and the file keeps that extent.
    assert restarts_now - restarts_then >= 6, sizes


async def test_when_the_process_dies_writes_fail_once_then_commit_on_the_loop(
    log: EventLog,
) -> None:
    process = _process(log)
    await log.insert_decisions([decision_row("before")])
    assert process.pid is not None
    os.kill(process.pid, signal.SIGKILL)
    for _ in range(1000):  # the socket's end reaches the loop within 10 s even on a busy machine
        if not process.running:
            break
        await asyncio.sleep(0.01)
    assert not process.running
    with pytest.raises(StorageUnavailableError):
        await process.insert_decisions([decision_row("refused")])
    await log.insert_decisions([decision_row("after")])  # the loop's own connection now
    assert log.inline is not None
    assert log.inline.writes == 1
    assert await stored_ids(log) == ["after", "before"]


async def test_a_process_that_cannot_open_the_database_fails_the_start(tmp_path: Path) -> None:
    event_log = await _event_log(tmp_path / "log.db")
    try:
        (tmp_path / "log.db").rename(tmp_path / "moved.db")
        (tmp_path / "log.db").mkdir()  # a directory where the database file was
        with pytest.raises(StorageUnavailableError, match="unable to open database file"):
            await event_log.start_writer_process()
        assert event_log.process is None
    finally:
        await event_log.aclose()
        await event_log.engine.dispose()


async def test_closing_waits_for_the_process_to_exit_after_its_last_commit(
    tmp_path: Path,
) -> None:
    event_log = await _event_log(tmp_path / "log.db")
    await event_log.start_writer_process()
    process = _process(event_log)
    popen = process._process
    assert popen is not None
    await event_log.insert_decisions([decision_row("last")])
    await event_log.aclose()
    assert popen.returncode == 0
    assert not process.running
    assert await stored_ids(event_log) == ["last"]
    await event_log.engine.dispose()
    assert not (tmp_path / "log.db-wal").exists()  # every connection closed cleanly


async def test_no_process_for_an_in_memory_database() -> None:
    engine = create_engine("sqlite+aiosqlite:///:memory:")
    event_log = EventLog(engine)
    try:
        assert not await event_log.start_writer_process()
        assert event_log.process is None
    finally:
        await event_log.aclose()
        await engine.dispose()
