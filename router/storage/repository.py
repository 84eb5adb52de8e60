"""The event log's queries. Database errors become :mod:`router.errors` here, nowhere else."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import msgspec
from sqlalchemy import Connection, bindparam, delete, exists, func, insert, select, text, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from learners.catalog import Catalog
from learners.decision import LoggedDecision, LoggedOutcome, StoredFeatures, learn_event
from learners.policy import LearnEvent
from learners.reward import Verdict
from router.errors import StorageUnavailableError, UnstorableValueError
from router.storage import inline_sqlite
from router.storage.inline_sqlite import (
    InlineSQLite,
    PreparedInsert,
    SQLiteBusyError,
)
from router.storage.models import (
    CatalogVersion,
    Checkpoint,
    Decision,
    Outcome,
    Tenant,
)
from router.storage.outage import OutageLog
from router.storage.sqlite_thread import SQLiteThread, sqlite_file_url
from router.storage.writer_process import DuplicateWriteError, WriterProcess

T = TypeVar("T")


class DecisionRecord(msgspec.Struct, frozen=True):
    id: str
    tenant_id: str
    request_id: str | None
    request_hash: str
    created_at: datetime
    catalog_fingerprint: str
    objective: str
    request: dict[str, Any]
    features: dict[str, Any]
    allowed: list[int]
    probabilities: list[float]
    chosen_action: str
    chosen_position: int
    propensity: float
    response: dict[str, Any]
    project_id: str | None = None
    task_type: str | None = None

    def stored_features(self) -> StoredFeatures:
        return msgspec.convert(self.features, StoredFeatures)

    def logged(self) -> LoggedDecision:
        """What learning needs of this decision (:func:`learners.decision.learn_event`)."""
        return logged_decision_of(self)


def logged_decision_of(row: Any) -> LoggedDecision:
    """The logged decision of anything holding the event log's decision columns (a result
    row, a :class:`DecisionRecord`): what :func:`learners.decision.learn_event` joins."""
    return LoggedDecision(
        tenant_id=row.tenant_id,
        decided_at=as_utc(row.created_at),
        project_id=row.project_id,
        task_type=row.task_type,
        catalog_fingerprint=row.catalog_fingerprint,
        features=msgspec.convert(row.features, StoredFeatures),
        allowed=list(row.allowed),
        chosen_position=row.chosen_position,
        chosen_action=row.chosen_action,
        propensity=row.propensity,
    )


def learn_event_of(row: Any) -> LearnEvent:
    """The learn event of anything holding a decision's and its outcome's columns."""
    outcome = LoggedOutcome(verdict=Verdict(row.verdict), reward=row.reward,
                            quality=row.quality, generation_time_s=row.generation_time_s,
                            cost_usd=row.cost_usd)
    return learn_event(logged_decision_of(row), outcome, seq=row.seq)


class OutcomeRecord(msgspec.Struct, frozen=True):
    seq: int
    decision_id: str
    verdict: str
    quality: float | None
    generation_time_s: float | None
    cost_usd: float | None
    tokens: int | None
    regenerations: int
    reward: float
    reward_source: str


class Horizon(msgspec.Struct, frozen=True):
    """PostgreSQL's transaction horizon at one moment (``pg_current_snapshot()``): every
    transaction id below ``xmin`` has ended; ids from ``xmax`` on had not been assigned."""

    xmin: int
    xmax: int


class FoldRead(msgspec.Struct, frozen=True):
    """Outcomes after a sequence number, and (PostgreSQL) the horizon taken just before."""

    events: list[LearnEvent]
    horizon: Horizon | None


class OutcomeCounts(msgspec.Struct, frozen=True):
    """Outcomes in the log, and how many of them have a number above the learned one."""

    logged: int
    behind: int


class DatasetCounts(msgspec.Struct, frozen=True):
    decisions: int
    outcomes: int
    by_task_type: dict[str, int]
    by_outcome: dict[str, int]
    by_model: dict[str, int]
    success_rate: float | None
    reward: float | None
    quality: float | None
    generation_time_s: float | None
    cost_usd: float | None


def _float(value: Any) -> float | None:
    return None if value is None else round(float(value), 6)


class DuplicateKeyError(Exception):
    """An insert collided with an existing primary or unique key."""


def _now() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes for timezone-aware columns; they are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# Point look-ups of the feedback path, built once (SQLAlchemy caches their compiled SQL).
_DECISION_BY_ID = select(
    Decision.id,
    Decision.tenant_id,
    Decision.request_id,
    Decision.request_hash,
    Decision.created_at,
    Decision.catalog_fingerprint,
    Decision.objective,
    Decision.request,
    Decision.features,
    Decision.allowed,
    Decision.probabilities,
    Decision.chosen_action,
    Decision.chosen_position,
    Decision.propensity,
    Decision.response,
    Decision.project_id,
    Decision.task_type,
).where(
    Decision.id == bindparam("decision_id"), Decision.tenant_id == bindparam("tenant_id")
)
_OUTCOME_BY_DECISION = select(
    Outcome.seq,
    Outcome.decision_id,
    Outcome.verdict,
    Outcome.quality,
    Outcome.generation_time_s,
    Outcome.cost_usd,
    Outcome.tokens,
    Outcome.regenerations,
    Outcome.reward,
    Outcome.reward_source,
).where(Outcome.decision_id == bindparam("decision_id"))


def refused_value(exc: DBAPIError) -> bool:
    """Whether the database refused a value (SQLSTATE class 22, "data exception": e.g. NUL in
    PostgreSQL text) rather than failing: the request is at fault, and retrying cannot help."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(exc, DataError) or (isinstance(sqlstate, str) and sqlstate.startswith("22"))


_OUTCOME_COLUMNS = [c for c in Outcome.metadata.tables["outcomes"].columns if c.name != "seq"]
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
_HORIZON = text(
    "SELECT pg_snapshot_xmin(s)::text, pg_snapshot_xmax(s)::text FROM pg_current_snapshot() s"
)


@contextmanager
def _storage_errors(outage: OutageLog) -> Iterator[None]:
    """Database errors as the service's: a unique-key clash, a value the database refuses, and
    an unavailable database (a failed or timed-out statement, a refused connection);
    ``outage`` logs the outage once."""
    try:
        yield
    except IntegrityError as exc:
        raise DuplicateKeyError(str(exc.orig)) from exc
    except DuplicateWriteError as exc:
        raise DuplicateKeyError(str(exc)) from exc
    except (OperationalError, DBAPIError, StorageUnavailableError, OSError, TimeoutError) as exc:
        if isinstance(exc, DBAPIError) and refused_value(exc):
            outage.succeeded()  # the database answered: the request is at fault
            raise UnstorableValueError(
                "the event log cannot store a value of this request", field="(body)"
            ) from exc
        raise outage.failed(exc) from exc
    outage.succeeded()


class EventLog:
    """Decisions, outcomes, checkpoints, catalogs and tenants in one SQL database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.outage = OutageLog()
        # SQLite has one writer at a time; queueing writers here, in order, avoids its busy
        # handler's sleep-and-retry back-off, which turned contention into second-long tails.
        self._write_lock = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        # File-backed SQLite: the hot-path inserts (decisions, outcomes) and look-ups (a
        # feedback's decision and outcome) fall back to a writer and a reader thread, one
        # hand-off per transaction (router/storage/sqlite_thread.py).
        file_url = sqlite_file_url(engine.url)
        self._writer = None if file_url is None else SQLiteThread(file_url, name="sqlite-writer")
        self._reader = None if file_url is None else SQLiteThread(file_url, name="sqlite-reader")
        # First choice for both: the loop's own thread, when that needs no waiting
        # (router/storage/inline_sqlite.py).
        self.inline = (None if file_url is None or self._write_lock is None
                       else InlineSQLite(file_url, self._write_lock))
        self._decision_insert = (
            None
            if self.inline is None
            else PreparedInsert(Decision.metadata.tables["decisions"], self.inline.dialect)
        )
        self._file_url = file_url
        # Started by start_writer_process: then decision and outcome inserts are committed by
        # a process of their own (router/storage/writer_process.py).
        self.process: WriterProcess | None = None

    async def start_writer_process(self, *, checkpoint_every: int | None = None) -> bool:
        """Commit the hot-path inserts in a writer process from now on (file-backed SQLite
        only; returns whether it started), with a WAL checkpoint every ``checkpoint_every``
        commits."""
        if self._file_url is None or self.process is not None:
            return self.process is not None
        every = inline_sqlite.CHECKPOINT_EVERY if checkpoint_every is None else checkpoint_every
        process = WriterProcess(self._file_url, checkpoint_every=every)
        await process.start()
        self.process = process
        return True

    async def aclose(self) -> None:
        """Stop the writer process after its last commit, then :meth:`close`."""
        if self.process is not None:
            await self.process.close()
        self.close()

    def close(self) -> None:
        """Stop the writer and reader threads (the engine is the caller's to dispose)."""
        for thread in (self._writer, self._reader):
            if thread is not None:
                thread.close()
        self._writer = self._reader = None
        if self.inline is not None:
            self.inline.close()
            self.inline = None

    async def _read(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one read transaction. File-backed SQLite: on the loop's thread, or in the
        reader thread when SQLite would make that wait; otherwise on the async engine."""
        if self._reader is None:
            async with self._transaction() as conn:
                return await conn.run_sync(work)
        with _storage_errors(self.outage):
            if self.inline is not None:
                try:
                    return self.inline.run(work, write=False)
                except SQLiteBusyError:
                    pass
            return await self._reader.run(work)

    async def _write(self, work: Callable[[Connection], T]) -> T:
        """``work`` in one write transaction. File-backed SQLite: after this process's earlier
        writes, on the loop's thread, or in the writer thread when another process holds
        SQLite's write lock; otherwise on the async engine."""
        if self._writer is None:
            async with self._transaction(write=True) as conn:
                return await conn.run_sync(work)
        assert self._write_lock is not None  # a writer exists only for SQLite
        with _storage_errors(self.outage):
            # Queue behind this process's other writers, then commit at once on this thread
            # (taking the lock when it is free does not suspend). Falling back to the thread
            # whenever the lock was taken instead made concurrent feedback calls keep it taken,
            # one thread hand-off after another.
            async with self._write_lock:
                if self.inline is not None:
                    try:
                        return self.inline.run(work, write=True)
                    except SQLiteBusyError:
                        pass  # another process is writing: wait for it in the writer thread
                return await self._writer.run(work)

    @asynccontextmanager
    async def _transaction(self, *, write: bool = False) -> AsyncIterator[AsyncConnection]:
        lock = self._write_lock if write else None
        with _storage_errors(self.outage):
            if lock is None:
                async with self.engine.begin() as connection:
                    yield connection
            else:
                async with lock, self.engine.begin() as connection:
                    yield connection

    async def ping(self) -> None:
        async with self._transaction() as conn:
            await conn.execute(select(1))

    # --- catalogs and tenants -------------------------------------------------------------

    async def ensure_catalog(self, catalog: Catalog) -> None:
        async with self._transaction(write=True) as conn:
            found = await conn.scalar(
                select(CatalogVersion.fingerprint).where(
                    CatalogVersion.fingerprint == catalog.fingerprint
                )
            )
            if found is None:
                await conn.execute(
                    insert(CatalogVersion).values(
                        fingerprint=catalog.fingerprint,
                        catalog=catalog.to_json(),
                        created_at=_now(),
                    )
                )

    async def load_catalogs(self) -> dict[str, Catalog]:
        async with self._transaction() as conn:
            rows = await conn.execute(select(CatalogVersion.fingerprint, CatalogVersion.catalog))
            return {fp: Catalog.from_json(raw) for fp, raw in rows}

    async def add_decision_counts(self, counts: Mapping[str, int]) -> None:
        """Add ``counts`` (tenant -> decisions logged since the last call) to the tenants'
        decision counts, in one transaction."""
        statement = (
            update(Tenant)
            .where(Tenant.id == bindparam("tenant"))
            .values(decisions=Tenant.decisions + bindparam("logged"))
        )
        rows = [{"tenant": tenant, "logged": n} for tenant, n in sorted(counts.items())]

        def work(conn: Connection) -> None:
            conn.execute(statement, rows)

        await self._write(work)

    async def tenant_decisions(self, tenant_id: str) -> int:
        """The decision count of ``tenant_id`` (one primary-key look-up)."""
        async with self._transaction() as conn:
            value = await conn.scalar(select(Tenant.decisions).where(Tenant.id == tenant_id))
        return int(value or 0)

    # --- decisions -----------------------------------------------------------------------

    async def insert_decisions(self, rows: list[dict[str, Any]]) -> None:
        """Insert decision rows in one transaction (all or none)."""
        process = self.process
        if process is not None and process.running:
            with _storage_errors(self.outage):
                await process.insert_decisions(rows)
            return
        prepared = self._decision_insert
        if prepared is None:
            statement = insert(Decision)

            def work(conn: Connection) -> None:
                conn.execute(statement, rows)

            await self._write(work)
            return
        parameters = prepared.parameters(rows)

        def work_prepared(conn: Connection) -> None:
            conn.exec_driver_sql(prepared.sql, parameters)

        await self._write(work_prepared)

    async def get_decision(self, tenant_id: str, decision_id: str) -> DecisionRecord | None:
        def work(conn: Connection) -> dict[str, Any] | None:
            row = conn.execute(
                _DECISION_BY_ID, {"decision_id": decision_id, "tenant_id": tenant_id}
            ).first()
            return None if row is None else row._asdict()

        values = await self._read(work)
        if values is None:
            return None
        values["created_at"] = as_utc(values["created_at"])
        return msgspec.convert(values, DecisionRecord, from_attributes=True)

    async def project_first_decisions(self) -> list[tuple[str, str, datetime]]:
        """(tenant, project, time of its first decision) for every project in the log."""
        query = (
            select(Decision.tenant_id, Decision.project_id, func.min(Decision.created_at))
            .where(Decision.project_id.is_not(None))
            .group_by(Decision.tenant_id, Decision.project_id)
        )
        async with self._transaction() as conn:
            rows = (await conn.execute(query)).all()
        return [(str(t), str(p), as_utc(at)) for t, p, at in rows]

    # --- outcomes ------------------------------------------------------------------------

    async def insert_outcome(self, values: dict[str, Any]) -> int:
        """Append an outcome; returns its sequence number. Raises DuplicateKeyError when the
        decision already has one."""
        process = self.process
        if process is not None and process.running:
            with _storage_errors(self.outage):
                return await process.insert_outcome(values)

        def work(conn: Connection) -> int | None:
            return conn.execute(_INSERT_NEW_OUTCOME, values).scalar_one_or_none()

        seq = await self._write(work)
        if seq is None:
            raise DuplicateKeyError(f"decision {values['decision_id']} already has an outcome")
        return int(seq)

    async def set_code_metrics(self, decision_id: str, metrics: dict[str, object]) -> None:
        """Fill in the code metrics of an outcome stored without them (they are measured after
        the outcome is stored, so a duplicate post never measures)."""
        statement = (
            update(Outcome).where(Outcome.decision_id == decision_id).values(code_metrics=metrics)
        )

        def work(conn: Connection) -> None:
            conn.execute(statement)

        await self._write(work)

    async def get_outcome(self, decision_id: str) -> OutcomeRecord | None:
        def work(conn: Connection) -> dict[str, Any] | None:
            row = conn.execute(_OUTCOME_BY_DECISION, {"decision_id": decision_id}).first()
            return None if row is None else row._asdict()

        values = await self._read(work)
        return None if values is None else msgspec.convert(values, OutcomeRecord)

    async def outcome_counts(self, learned_seq: int) -> OutcomeCounts:
        """How many outcomes the log holds, and how many are numbered above ``learned_seq``
        (numbers no row holds are not counted: PostgreSQL sequences have holes)."""
        query = select(func.count(), func.count().filter(Outcome.seq > learned_seq))
        async with self._transaction() as conn:
            logged, behind = (await conn.execute(query)).one()
        return OutcomeCounts(logged=int(logged), behind=int(behind))

    async def fold_read(self, seq: int, limit: int = 1000) -> FoldRead:
        """:meth:`learn_events_after`, after (PostgreSQL) taking the transaction horizon: an
        outcome whose transaction had ended by then is among the events."""
        horizon = None
        if self.engine.dialect.name == "postgresql":
            async with self._transaction() as conn:
                xmin, xmax = (await conn.execute(_HORIZON)).one()
            horizon = Horizon(xmin=int(xmin), xmax=int(xmax))
        return FoldRead(events=await self.learn_events_after(seq, limit), horizon=horizon)

    async def learn_events_after(self, seq: int, limit: int = 1000) -> list[LearnEvent]:
        """Outcomes with a sequence number above ``seq``, in order, joined with their
        decision's logged features and propensity."""
        query = (
            select(
                Outcome.seq,
                Decision.tenant_id,
                Decision.created_at,
                Decision.project_id,
                Decision.chosen_action,
                Decision.catalog_fingerprint,
                Decision.features,
                Decision.allowed,
                Decision.chosen_position,
                Decision.propensity,
                Decision.task_type,
                Outcome.reward,
                Outcome.verdict,
                Outcome.quality,
                Outcome.generation_time_s,
                Outcome.cost_usd,
            )
            .join(Decision, Decision.id == Outcome.decision_id)
            .where(Outcome.seq > seq)
            .order_by(Outcome.seq)
            .limit(limit)
        )
        async with self._transaction() as conn:
            rows = (await conn.execute(query)).all()
        return [learn_event_of(row) for row in rows]

    async def dataset_counts(self, tenant_id: str | None) -> DatasetCounts:
        """Counts and averages over decisions with outcomes (``tenant_id`` None: all)."""
        joined = select(Decision.id).join(Outcome, Outcome.decision_id == Decision.id)
        where = [] if tenant_id is None else [Decision.tenant_id == tenant_id]

        async def grouped(column: Any) -> dict[str, int]:
            query = (
                select(column, func.count())
                .select_from(Decision)
                .join(Outcome, Outcome.decision_id == Decision.id)
                .where(*where)
                .group_by(column)
            )
            rows = (await conn.execute(query)).all()
            return {str(key if key is not None else "unknown"): int(n) for key, n in rows}

        async with self._transaction() as conn:
            decisions = int(
                await conn.scalar(select(func.count()).select_from(Decision).where(*where)) or 0
            )
            outcomes = int(
                await conn.scalar(select(func.count()).select_from(joined.where(*where).subquery()))
                or 0
            )
            by_task_type = await grouped(Decision.task_type)
            by_outcome = await grouped(Outcome.verdict)
            by_model = await grouped(Decision.model)
            averages = (
                await conn.execute(
                    select(
                        func.avg(Outcome.reward),
                        func.avg(Outcome.quality),
                        func.avg(Outcome.generation_time_s),
                        func.avg(Outcome.cost_usd),
                    )
                    .select_from(Decision)
                    .join(Outcome, Outcome.decision_id == Decision.id)
                    .where(*where)
                )
            ).one()
        approved = by_outcome.get(Verdict.APPROVED.value, 0)
        return DatasetCounts(
            decisions=decisions,
            outcomes=outcomes,
            by_task_type=by_task_type,
            by_outcome=by_outcome,
            by_model=by_model,
            success_rate=approved / outcomes if outcomes else None,
            reward=_float(averages[0]),
            quality=_float(averages[1]),
            generation_time_s=_float(averages[2]),
            cost_usd=_float(averages[3]),
        )

    # --- checkpoints ---------------------------------------------------------------------

    async def save_checkpoint(self, learner: str, last_seq: int, state: bytes, keep: int) -> None:
        async with self._transaction(write=True) as conn:
            newest = await conn.scalar(
                select(func.max(Checkpoint.last_seq)).where(Checkpoint.learner == learner)
            )
            if newest is not None and newest >= last_seq:
                return  # another process already saved this state or a newer one
            await conn.execute(
                insert(Checkpoint).values(
                    learner=learner, last_seq=last_seq, state=state, created_at=_now()
                )
            )
            old = (
                await conn.scalars(
                    select(Checkpoint.id)
                    .where(Checkpoint.learner == learner)
                    .order_by(Checkpoint.last_seq.desc())
                    .offset(keep)
                )
            ).all()
            if old:
                await conn.execute(delete(Checkpoint).where(Checkpoint.id.in_(old)))

    async def latest_checkpoint(self, learner: str) -> tuple[int, bytes] | None:
        async with self._transaction() as conn:
            row = (
                await conn.execute(
                    select(Checkpoint.last_seq, Checkpoint.state)
                    .where(Checkpoint.learner == learner)
                    .order_by(Checkpoint.last_seq.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else (int(row[0]), bytes(row[1]))
