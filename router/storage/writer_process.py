"""The SQLite writer process: it commits a file-backed event log's decisions and outcomes.

The event loop is the service's one CPU-bound thread; encoding a decision's JSON columns (about
170 floats formatted as text), SQLite's insert and the WAL writes cost it about 0.07 ms per route
of 0.35 ms, and a thread cannot take that work off it (the GIL). A process has its own GIL. The
service (router/storage/writer_client.py) sends each decision batch or outcome as one msgpack
frame over a socket pair and awaits the answer; this process encodes the columns with the same
SQLAlchemy bind processors as the ORM, commits, and answers. A route or feedback call returns
only after its row is committed (DESIGN.md: persist, then respond), and a committed row survives
a crash of either process. The process also runs the WAL checkpoints (router/storage/wal.py).

Protocol, both ways: frames of a 4-byte big-endian length and a msgpack body. Requests are
:class:`InsertDecisions` or :class:`InsertOutcome`; answers (:class:`Answer`) come in request
order, each with the process's counters; after each checkpoint the process also sends its
counters unasked, as status ``stats``. The first answer says the process is ready (or why it
could not start).

The process logs to stderr through the service's setup (router/logs.py), with the level and
format of the process that started it.

The process ends when the socket closes: the service's shutdown, or the service dying (SIGKILL
included), since the kernel closes a dead process's sockets. It ignores SIGINT, so a Ctrl-C at a
terminal, which reaches the whole process group, leaves it to finish the writes of a graceful
shutdown.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from sqlalchemy import Table, insert
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import IntegrityError

from router.logs import LogFormat, configure_logging
from router.storage.database import no_autocheckpoint, sqlite_pragmas, sqlite_sync_engine
from router.storage.models import Decision, Outcome
from router.storage.rows import DecisionRow, OutcomeRow
from router.storage.wal import Checkpointer

logger = logging.getLogger("router.storage")

LENGTH = struct.Struct(">I")
OK, DUPLICATE, ERROR = "ok", "duplicate", "error"
STATS = "stats"  # not an answer: the counters after a checkpoint, sent unasked


class InsertDecisions(msgspec.Struct, frozen=True, array_like=True, tag="d"):
    rows: list[DecisionRow]


class InsertOutcome(msgspec.Struct, frozen=True, array_like=True, tag="o"):
    row: OutcomeRow


WriterRequest = InsertDecisions | InsertOutcome


class WriterStats(msgspec.Struct, array_like=True, frozen=True):
    """Counters of the writer process, sent with every answer."""

    writes: int = 0  # transactions committed
    checkpoints: int = 0
    complete_checkpoints: int = 0  # the whole WAL copied: the next write starts it over
    wal_frames: int = -1  # frames in the WAL at the last checkpoint (-1: none yet)


class Answer(msgspec.Struct, array_like=True, frozen=True):
    """``status`` ok/duplicate/error/stats; ``value`` an outcome's number or an error's text."""

    status: str
    value: int | str | None
    stats: WriterStats | None


def frame(body: bytes) -> bytes:
    return LENGTH.pack(len(body)) + body


class PreparedInsert:
    """An INSERT of every column of ``table``, compiled once by SQLAlchemy for ``dialect``.

    :meth:`parameters` turns rows into the DBAPI's positional parameters with the dialect's own
    bind processors (JSON through the engine's serializer, datetimes in SQLite's storage
    format), so rows read back exactly as if ``insert(table)`` had written them; it only skips
    SQLAlchemy's per-statement work on every batch.
    """

    def __init__(self, table: Table, dialect: Dialect) -> None:
        compiled = insert(table).compile(
            dialect=dialect, column_keys=[column.key for column in table.columns]
        )
        self.sql = str(compiled)
        processors: list[tuple[str, Callable[[Any], Any] | None]] = []
        for name in compiled.positiontup or []:
            column_type = table.c[name].type
            processors.append((name, column_type.dialect_impl(dialect).bind_processor(dialect)))
        self._processors = processors

    def parameters(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """One tuple per row, in the statement's order; a missing column is NULL."""
        processors = self._processors
        return [
            tuple(
                row.get(name) if process is None else process(row.get(name))
                for name, process in processors
            )
            for row in rows
        ]


def _writer_pragmas(dbapi_connection: Any, record: Any) -> None:
    sqlite_pragmas(dbapi_connection, record)  # busy timeout: another process may be writing
    no_autocheckpoint(dbapi_connection, record)  # the checkpoint thread copies the WAL


class _Writer:
    def __init__(self, url: URL, checkpoint_every: int,
                 on_checkpoint: Callable[[], None]) -> None:
        self._engine = sqlite_sync_engine(url, pragmas=_writer_pragmas)
        self._connection = self._engine.connect()
        self._decisions = PreparedInsert(
            Decision.metadata.tables["decisions"], self._engine.dialect)
        outcomes: Table = Outcome.metadata.tables["outcomes"]
        self._outcome = insert(outcomes).returning(outcomes.c.seq)
        self._lock = threading.Lock()  # held by a commit; the last checkpoint pass takes it
        self._checkpointer = Checkpointer(url, self._lock, on_checkpoint)
        self._since_checkpoint = 0
        self._checkpoint_every = checkpoint_every
        self.writes = 0

    def stats(self) -> WriterStats:
        c = self._checkpointer
        return WriterStats(self.writes, c.checkpoints, c.complete, c.wal_frames)

    def handle(self, request: WriterRequest) -> tuple[str, int | str | None]:
        try:
            with self._lock, self._connection.begin():
                value = self._execute(request)
        except IntegrityError as exc:
            return DUPLICATE, str(exc.orig)
        except Exception as exc:  # the service turns it into a 503
            return ERROR, f"{type(exc).__name__}: {exc}"
        self.writes += 1
        self._since_checkpoint += 1
        if self._since_checkpoint >= self._checkpoint_every:
            self._since_checkpoint = 0
            self._checkpointer.request()
        return OK, value

    def _execute(self, request: WriterRequest) -> int | None:
        if isinstance(request, InsertDecisions):
            rows = [row.columns() for row in request.rows]
            self._connection.exec_driver_sql(
                self._decisions.sql, self._decisions.parameters(rows))
            return None
        return int(self._connection.execute(self._outcome, request.row.columns()).scalar_one())

    def close(self) -> None:
        self._checkpointer.close()
        self._connection.close()
        self._engine.dispose()


def _read_exactly(stream: Any, size: int) -> bytes | None:
    data: bytes = stream.read(size)
    return data if len(data) == size else None


def serve(sock: socket.socket, url: URL, checkpoint_every: int) -> None:
    """Answer requests on ``sock`` until it closes; a checkpoint every ``checkpoint_every``
    commits."""
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(WriterRequest)
    sending = threading.Lock()  # answers (this thread) and counters (the checkpoint thread)
    writer: _Writer | None = None

    def send(status: str, value: int | str | None) -> None:
        stats = None if writer is None else writer.stats()
        body = frame(encoder.encode(Answer(status, value, stats)))
        with sending:
            sock.sendall(body)

    def checkpointed() -> None:
        with contextlib.suppress(OSError):  # the service has gone: the main thread ends too
            send(STATS, None)

    try:
        writer = _Writer(url, checkpoint_every, checkpointed)
    except Exception as exc:  # reported to the service: it fails to start
        send(ERROR, f"{type(exc).__name__}: {exc}")
        return
    stream = sock.makefile("rb")
    try:
        logger.info("SQLite writer process %d started", os.getpid())
        send(OK, None)
        while True:
            header = _read_exactly(stream, LENGTH.size)
            if header is None:
                return  # the service closed the socket (or died)
            body = _read_exactly(stream, LENGTH.unpack(header)[0])
            if body is None:
                return
            send(*writer.handle(decoder.decode(body)))
    except (BrokenPipeError, ConnectionResetError):
        return
    finally:
        stream.close()
        writer.close()


def main(argv: Sequence[str]) -> int:
    """``argv``: the socket's descriptor, the database URL, the commits between checkpoints,
    and the log level (a number) and format of the process that starts this one."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fd, url, checkpoint_every = int(argv[0]), make_url(argv[1]), int(argv[2])
    log_format: LogFormat = "text" if argv[4] == "text" else "json"
    configure_logging(int(argv[3]), log_format)
    with socket.socket(fileno=fd) as sock:
        serve(sock, url, checkpoint_every)
    return 0


if __name__ == "__main__":
    os._exit(main(sys.argv[1:]))
