"""Decision and outcome inserts committed by the SQLite writer process: the same stored rows
as the ORM's, duplicates, checkpoints, the process dying and being replaced, start failures and
shutdown, its log lines; the async engine's inserts of an in-memory database; look-ups on the
loop's connection."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from learners.decision import StoredFeatures
from router.errors import StorageUnavailableError
from router.logs import LogFormat, create_formatter
from router.storage.database import create_engine, migrate, sqlite_file_url
from router.storage.models import CatalogVersion, Decision
from router.storage.repository import DuplicateKeyError, EventLog
from router.storage.rows import DecisionRow, ModelVersions, OutcomeRow
from router.storage.writer_client import WriterProcess


def decision_row(decision_id: str, **changes: Any) -> DecisionRow:
    """A decision row with every kind of column the route path writes."""
    row = DecisionRow(
        id=decision_id,
        tenant_id="t1",
        request_id=None,
        request_hash="ab" * 32,
        created_at=datetime(2026, 11, 22, 3, 4, 5, 678901, tzinfo=UTC),
        catalog_fingerprint="fp",
        objective="balanced",
        request=b'{"task":{"type":"bugfix","description":"x \\u00e9"}}',
        features=StoredFeatures(
            namespaces={"t": {"type=bugfix": 1.0}}, complexity=0.25, prior_time_s=3.5
        ),
        project_id="p1",
        task_type="bugfix",
        language="python",
        model="m1",
        allowed=[0, 1, 2],
        probabilities=[0.1, 0.2000000000000001, 0.7],
        chosen_action="m1|0.2|plain",
        chosen_position=2,
        propensity=0.7,
        explored=False,
        policy_name="p",
        policy_version="v",
        model_versions=ModelVersions(batch=None, online="v"),
        learner_seq=0,
        shadow_probabilities={"c1": {"version": "w", "probabilities": [0.5, 0.25, 0.25]}},
        response={"decision_id": decision_id, "nested": {"x": [1, 2.5, None]}},
    )
    return msgspec.structs.replace(row, **changes)


def outcome_row(decision_id: str) -> OutcomeRow:
    return OutcomeRow(
        decision_id=decision_id, tenant_id="t1", created_at=datetime.now(UTC),
        verdict="approved", quality=8.0, generation_time_s=1.5, cost_usd=0.01, tokens=100,
        regenerations=0, code=None, reward=0.8, reward_source="explicit", complexity=2.5,
    )


def wal_restarts(wal_path: Path) -> int:
    """How many times SQLite has started the WAL over: the checkpoint sequence number of its
    header (bytes 12-15, big-endian), which each restart increments."""
    with wal_path.open("rb") as wal:
        return int.from_bytes(wal.read(32)[12:16], "big")


async def stored_ids(log: EventLog) -> list[str]:
    async with log.engine.connect() as conn:
        return list((await conn.execute(select(Decision.id).order_by(Decision.id))).scalars())


async def _event_log(url: str, *, checkpoint_every: int | None = None) -> EventLog:
    engine = create_engine(url)
    await migrate(engine)
    async with engine.begin() as conn:
        await conn.execute(insert(CatalogVersion).values(
            fingerprint="fp", catalog=b"{}", created_at=datetime.now(UTC)))
    return EventLog(engine, checkpoint_every=checkpoint_every)


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[EventLog]:
    event_log = await _event_log(f"sqlite+aiosqlite:///{tmp_path}/log.db", checkpoint_every=8)
    await event_log.start()
    try:
        yield event_log
    finally:
        await event_log.aclose()
        await event_log.engine.dispose()


def _writer(log: EventLog) -> WriterProcess:
    assert log.writer is not None
    return log.writer


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite+aiosqlite:////tmp/x/log.db", "sqlite:////tmp/x/log.db"),
        ("sqlite+aiosqlite:///relative.db", "sqlite:///relative.db"),
        ("sqlite+aiosqlite://", None),
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite+aiosqlite:///file:log?mode=memory&uri=true", None),
        ("postgresql+asyncpg://postgres@127.0.0.1/test", None),
    ],
)
def test_only_file_databases_get_a_writer_process(url: str, expected: str | None) -> None:
    found = sqlite_file_url(make_url(url))
    assert (None if found is None else found.render_as_string()) == expected


async def test_process_rows_read_back_exactly_like_orm_inserts(log: EventLog) -> None:
    async with log.engine.begin() as conn:
        await conn.execute(insert(Decision), [decision_row("orm").columns()])
    await log.insert_decisions([decision_row("process")])
    assert _writer(log).stats.writes == 1

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
    assert raw["process"][5] == (
        '{"batch":null,"online":"v","strategy":null,"template_ranking":null}')
    stored = await log.get_decision("t1", "process")
    assert stored is not None
    assert stored.response == {"decision_id": "process", "nested": {"x": [1, 2.5, None]}}
    assert stored.logged().features.complexity == 0.25


async def check_outcomes_in_sequence(log: EventLog) -> None:
    """Two decisions, their outcomes numbered 1 and 2, a second outcome refused, one read
    back (three write transactions and a refused one)."""
    await log.insert_decisions([decision_row("a"), decision_row("b")])
    assert await log.insert_outcome(outcome_row("a")) == 1
    assert await log.insert_outcome(outcome_row("b")) == 2
    with pytest.raises(DuplicateKeyError):
        await log.insert_outcome(outcome_row("a"))
    stored = await log.get_outcome("b")
    assert stored is not None
    assert (stored.seq, stored.reward, stored.tokens) == (2, 0.8, 100)
    assert [event.seq for event in await log.learn_events_after(0)] == [1, 2]


async def check_a_duplicate_rolls_back_its_batch(log: EventLog) -> None:
    """A batch holding a taken id keeps nothing, and the next batch commits."""
    await log.insert_decisions([decision_row("a")])
    with pytest.raises(DuplicateKeyError):
        await log.insert_decisions([decision_row("b"), decision_row("a")])
    assert await stored_ids(log) == ["a"]
    await log.insert_decisions([decision_row("c")])
    assert await stored_ids(log) == ["a", "c"]


async def test_outcomes_get_sequence_numbers_and_a_duplicate_is_refused(log: EventLog) -> None:
    await check_outcomes_in_sequence(log)
    assert _writer(log).stats.writes == 3


async def test_a_duplicate_rolls_back_the_whole_batch_and_the_process_goes_on(
    log: EventLog,
) -> None:
    await check_a_duplicate_rolls_back_its_batch(log)
    assert _writer(log).stats.writes == 2


@pytest.fixture
async def memory_log() -> AsyncIterator[EventLog]:
    event_log = await _event_log("sqlite+aiosqlite:///:memory:")
    try:
        yield event_log
    finally:
        await event_log.aclose()
        await event_log.engine.dispose()


async def test_an_in_memory_database_is_written_by_the_async_engine(memory_log: EventLog) -> None:
    assert memory_log.writer is None
    await memory_log.start()  # nothing to start
    await check_outcomes_in_sequence(memory_log)


async def test_the_async_engine_rolls_back_a_batch_with_a_duplicate(memory_log: EventLog) -> None:
    await check_a_duplicate_rolls_back_its_batch(memory_log)


async def test_concurrent_calls_are_answered_in_order(log: EventLog) -> None:
    await log.insert_decisions([decision_row(f"d{i}") for i in range(20)])
    seqs = await asyncio.gather(
        *(log.insert_outcome(outcome_row(f"d{i}")) for i in range(20)),
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
    writer = _writer(log)
    sizes: list[tuple[int, int, int]] = []
    batches = 0
    marks = [4, 16]

    async def write(name: str) -> None:
        nonlocal batches
        i = 0
        while marks:
            rows = [decision_row(f"{name}-{i}-{k}", features=StoredFeatures(
                namespaces=namespaces, complexity=0.5, prior_time_s=1.0)) for k in range(8)]
            await log.insert_decisions(rows)
            batches += 1
            i += 1
            if marks and writer.stats.checkpoints >= marks[0]:
                marks.pop(0)
                sizes.append((batches, wal_path.stat().st_size, wal_restarts(wal_path)))

    await asyncio.gather(*(write(f"w{n}") for n in range(3)))
    assert writer.stats.complete_checkpoints == writer.stats.checkpoints >= 16
    (batches_then, _, restarts_then), (batches_now, _, restarts_now) = sizes
    assert batches_now > 2 * batches_then
    # The WAL started over at most of the 12 checkpoints between the two marks (with passive
    # checkpoints alone it never does, and grows with every commit). Its file size is not the
    # measure: one slow fsync lets more commits into a cycle, and the file keeps that extent.
    assert restarts_now - restarts_then >= 6, sizes


async def _until_gone(writer: WriterProcess) -> None:
    for _ in range(1000):  # the socket's end reaches the loop within 10 s even on a busy machine
        if not writer.running:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the writer process's socket stayed open")


async def test_a_dead_process_fails_the_calls_in_flight_and_the_next_write_starts_another(
    log: EventLog,
) -> None:
    writer = _writer(log)
    await log.insert_decisions([decision_row("before")])
    first = writer.pid
    assert first is not None
    os.kill(first, signal.SIGSTOP)  # holds the next call in flight
    in_flight = asyncio.create_task(log.insert_decisions([decision_row("in-flight")]))
    await asyncio.sleep(0.05)
    assert not in_flight.done()
    os.kill(first, signal.SIGKILL)
    with pytest.raises(StorageUnavailableError):
        await in_flight  # answered 503: whether it was committed is unknown to the caller
    await _until_gone(writer)
    await log.insert_decisions([decision_row("after")])  # a new process commits it
    assert writer.running
    assert writer.pid not in (None, first)
    assert writer.starts == 2
    assert (writer.stats.writes, await stored_ids(log)) == (1, ["after", "before"])


async def test_a_process_that_cannot_open_the_database_fails_the_start(tmp_path: Path) -> None:
    event_log = await _event_log(f"sqlite+aiosqlite:///{tmp_path}/log.db")
    try:
        (tmp_path / "log.db").rename(tmp_path / "moved.db")
        (tmp_path / "log.db").mkdir()  # a directory where the database file was
        with pytest.raises(StorageUnavailableError, match="event log is unavailable"):
            await event_log.start()
        assert event_log.writer is not None
        assert not event_log.writer.running
        with pytest.raises(StorageUnavailableError):  # a write tries again, and fails alike
            await event_log.insert_decisions([decision_row("refused")])
    finally:
        await event_log.aclose()
        await event_log.engine.dispose()


async def test_closing_waits_for_the_process_to_exit_after_its_last_commit(
    tmp_path: Path,
) -> None:
    event_log = await _event_log(f"sqlite+aiosqlite:///{tmp_path}/log.db")
    await event_log.insert_decisions([decision_row("last")])  # the first write starts it
    writer = _writer(event_log)
    assert writer.running
    await event_log.aclose()
    assert writer.returncode == 0
    assert not writer.running
    with pytest.raises(StorageUnavailableError):  # a closed log starts no new process
        await event_log.insert_decisions([decision_row("too late")])
    assert await stored_ids(event_log) == ["last"]
    await event_log.engine.dispose()
    assert not (tmp_path / "log.db-wal").exists()  # every connection closed cleanly


@pytest.mark.parametrize(("level", "log_format"),
                         [("info", "json"), ("info", "text"), ("warning", "json")])
async def test_the_process_logs_at_the_level_and_in_the_format_of_its_service(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], level: str, log_format: LogFormat
) -> None:
    # The service's setup (router/logs.py), writing elsewhere than stderr: every line there
    # comes from the process.
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(create_formatter(log_format))
    root.addHandler(handler)
    root.setLevel(level.upper())
    event_log = await _event_log(f"sqlite+aiosqlite:///{tmp_path}/log.db")
    try:
        await event_log.start()
        pid = _writer(event_log).pid
    finally:
        await event_log.aclose()
        await event_log.engine.dispose()
    started = [line for line in capfd.readouterr().err.splitlines()
               if f"SQLite writer process {pid} started" in line]
    if level == "warning":
        assert started == []
    elif log_format == "json":
        assert len(started) == 1, started
        line = json.loads(started[0])
        assert (line["level"], line["logger"]) == ("info", "router.storage")
        assert {"timestamp", "event"} <= line.keys()
    else:
        assert len(started) == 1, started
        assert "[info" in started[0]
        assert "router.storage" in started[0]
        assert not started[0].startswith("{")


class _BusyConnection:
    """A loop connection whose every transaction SQLite refuses with SQLITE_BUSY."""

    def begin(self) -> None:
        busy = sqlite3.OperationalError("database is locked")
        busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
        raise OperationalError("SELECT", {}, busy)

    def close(self) -> None:
        pass


async def test_look_ups_run_on_the_loop_and_on_the_async_engine_when_sqlite_refuses(
    log: EventLog,
) -> None:
    await log.insert_decisions([decision_row("a")])
    assert await log.get_decision("t1", "a") is not None
    assert await log.get_decision("t2", "a") is None  # another tenant's decision is not found
    assert (log.loop_reads, log.busy_reads) == (2, 0)
    log._reader_connection = _BusyConnection()  # type: ignore[assignment]
    found = await log.get_decision("t1", "a")  # on the async engine, which may wait
    assert found is not None
    assert found.chosen_action == "m1|0.2|plain"
    assert (log.loop_reads, log.busy_reads) == (2, 1)
    assert not log.outage.down
