"""The hot-path writes of a file-backed SQLite event log, committed in a process of their own.

Why a process: the event loop is the service's one CPU-bound thread, and committing decision
batches on it (router/storage/inline_sqlite.py) cost it about 0.07 ms per route of 0.35 ms:
encoding the JSON columns (about 170 floats per decision, formatted as text), SQLite's insert,
the WAL writes. A thread cannot take that work: batches handed to a writer thread waited 4-5 ms
for the GIL, with the loop idle meanwhile (README "Benchmark"). A process has its own GIL. The
loop now sends each decision batch or outcome as one msgpack frame (floats as 8 raw bytes, no
text formatting) over a socket pair and awaits the answer; the process encodes the columns with
the same SQLAlchemy bind processors, commits, and answers. Durability is unchanged: a route or
feedback call returns only after its row is committed (DESIGN.md: persist, then respond), and a
committed row survives a crash of either process.

The process also runs the WAL checkpoints (the loop's process no longer writes the hot-path
rows): passes in a thread of its own beside the writes, then one last pass holding the writes
back so that the WAL is copied whole and starts over (inline_sqlite.py says why).

Protocol, both ways: frames of a 4-byte big-endian length and a msgpack body. Requests are
``[op, payload]``: ``"d"`` with a list of decision rows (column -> value; ``bytes`` in a JSON
column is already-encoded JSON), ``"o"`` with one outcome row. Answers come in request order:
``[status, value, stats]`` with status ``ok``/``duplicate``/``error``, ``value`` the outcome's
sequence number, and ``stats`` the process's counters (:class:`WriterStats`); after each
checkpoint the process also sends its counters unasked, as status ``stats``. The first answer
says the process is ready (or why it could not start).

The process ends when the socket closes: the service's shutdown, or the service dying (SIGKILL
included), since the kernel closes a dead process's sockets. It ignores SIGINT, so a Ctrl-C at a
terminal, which reaches the whole process group, leaves it to finish the writes of a graceful
shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from sqlalchemy import Connection, Table, insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError

from router.storage.inline_sqlite import (
    CATCH_UP_FRAMES,
    CATCH_UP_PASSES,
    CHECKPOINT_EVERY,
    CheckpointResult,
    PreparedInsert,
    checkpoint_pass,
)
from router.storage.models import Decision, Outcome
from router.storage.sqlite_thread import sqlite_sync_engine

logger = logging.getLogger("router.storage")

_LENGTH = struct.Struct(">I")
START_TIMEOUT_S = 60.0  # importing SQLAlchemy and opening the file; seconds on a loaded machine
STOP_TIMEOUT_S = 30.0

OK, DUPLICATE, ERROR = "ok", "duplicate", "error"
STATS = "stats"  # not an answer: the counters after a checkpoint, sent unasked
INSERT_DECISIONS, INSERT_OUTCOME = "d", "o"


class WriterStats(msgspec.Struct, array_like=True, frozen=True):
    """Counters of the writer process, sent with every answer."""

    writes: int = 0  # transactions committed
    checkpoints: int = 0
    complete_checkpoints: int = 0  # the whole WAL copied: the next write starts it over
    wal_frames: int = -1  # frames in the WAL at the last checkpoint (-1: none yet)


def frame(body: bytes) -> bytes:
    return _LENGTH.pack(len(body)) + body


def portable_row(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` as msgpack can carry it: already-encoded JSON (``msgspec.Raw``) as bytes."""
    return {
        key: bytes(value) if isinstance(value, msgspec.Raw) else value
        for key, value in row.items()
    }


# --- the process -------------------------------------------------------------------------


def _json_ready(row: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`portable_row`: neither table has a binary column, so ``bytes``
    can only be JSON the service encoded before sending."""
    for key, value in row.items():
        if isinstance(value, bytes):
            row[key] = msgspec.Raw(value)
    return row


def _writer_pragmas(dbapi_connection: Any, record: Any) -> None:
    from router.storage.database import sqlite_pragmas

    sqlite_pragmas(dbapi_connection, record)  # busy timeout: another process may be writing
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint thread copies the WAL
    cursor.close()


class _Checkpointer:
    """WAL checkpoints in a thread beside the writes: passive passes, then one holding the
    process's writes back (``write_lock``), so that the WAL is copied whole."""

    def __init__(self, url: URL, write_lock: threading.Lock,
                 on_checkpoint: Callable[[], None]) -> None:
        self._engine = sqlite_sync_engine(url)
        self._write_lock = write_lock
        self._on_checkpoint = on_checkpoint
        self._wanted = threading.Event()
        self._stopping = False
        self.checkpoints = 0
        self.complete = 0
        self.wal_frames = -1
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wanted.set()  # one already under way covers the request too

    def _pass(self) -> CheckpointResult:
        with self._engine.begin() as connection:
            return checkpoint_pass(connection)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopping:
                return
            try:
                previous = self._pass()
                for _ in range(CATCH_UP_PASSES):
                    result = self._pass()
                    behind = result.wal_frames - previous.wal_frames
                    previous = result
                    if behind <= CATCH_UP_FRAMES:
                        break
                with self._write_lock:
                    result = self._pass()
            except Exception as exc:  # a failed checkpoint is retried later
                logger.warning("WAL checkpoint failed: %s", exc)
                continue
            self.checkpoints += 1
            self.complete += int(result.complete)
            self.wal_frames = result.wal_frames
            self._on_checkpoint()

    def close(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()
        self._engine.dispose()


class _Writer:
    def __init__(self, url: URL, checkpoint_every: int,
                 on_checkpoint: Callable[[], None]) -> None:
        self._engine = sqlite_sync_engine(url, pragmas=_writer_pragmas)
        self._connection = self._engine.connect()
        dialect = self._engine.dialect
        self._decisions = PreparedInsert(Decision.metadata.tables["decisions"], dialect)
        outcomes: Table = Outcome.metadata.tables["outcomes"]
        self._outcome = insert(outcomes).returning(outcomes.c.seq)
        self._lock = threading.Lock()
        self._checkpointer = _Checkpointer(url, self._lock, on_checkpoint)
        self._since_checkpoint = 0
        self._checkpoint_every = checkpoint_every
        self.writes = 0

    def stats(self) -> WriterStats:
        c = self._checkpointer
        return WriterStats(self.writes, c.checkpoints, c.complete, c.wal_frames)

    def handle(self, op: str, payload: Any) -> tuple[str, Any]:
        try:
            with self._lock, self._connection.begin():
                value = self._execute(self._connection, op, payload)
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

    def _execute(self, connection: Connection, op: str, payload: Any) -> int | None:
        if op == INSERT_DECISIONS:
            rows = [_json_ready(row) for row in payload]
            connection.exec_driver_sql(self._decisions.sql, self._decisions.parameters(rows))
            return None
        if op == INSERT_OUTCOME:
            return int(connection.execute(self._outcome, _json_ready(payload)).scalar_one())
        raise ValueError(f"unknown operation {op!r}")

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
    request_decoder = msgspec.msgpack.Decoder(tuple[str, Any])
    sending = threading.Lock()  # answers (this thread) and counters (the checkpoint thread)
    writer: _Writer | None = None

    def send(status: str, value: Any) -> None:
        body = frame(encoder.encode([status, value, None if writer is None else writer.stats()]))
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
        send(OK, None)
        while True:
            header = _read_exactly(stream, _LENGTH.size)
            if header is None:
                return  # the service closed the socket (or died)
            body = _read_exactly(stream, _LENGTH.unpack(header)[0])
            if body is None:
                return
            op, payload = request_decoder.decode(body)
            send(*writer.handle(op, payload))
    except (BrokenPipeError, ConnectionResetError):
        return
    finally:
        stream.close()
        writer.close()


def main(argv: Sequence[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s - %(name)s - %(message)s")
    fd, url, checkpoint_every = int(argv[0]), make_url(argv[1]), int(argv[2])
    with socket.socket(fileno=fd) as sock:
        serve(sock, url, checkpoint_every)
    return 0


# --- the service's side ------------------------------------------------------------------


def _unavailable(message: str) -> Exception:
    # Imported here: the process itself has no use for the service's errors (and Litestar).
    from router.errors import StorageUnavailableError

    return StorageUnavailableError(message)


class _Answer(msgspec.Struct, array_like=True):
    status: str
    value: Any
    stats: WriterStats | None


class _Protocol(asyncio.Protocol):
    def __init__(self, client: WriterProcess) -> None:
        self._client = client
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer, start)
            end = start + _LENGTH.size + size
            if len(buffer) < end:
                break
            self._client.answered(bytes(buffer[start + _LENGTH.size:end]))
            start = end
        if start:
            del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._client.lost(exc)


class WriterProcess:
    """The service's handle on the writer process: :meth:`insert_decisions` and
    :meth:`insert_outcome` return once the process has committed (or raise what the commit
    raised: :class:`DuplicateWriteError`, or :class:`StorageUnavailableError`)."""

    def __init__(self, url: URL, *, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self._url = url
        self._checkpoint_every = checkpoint_every
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(_Answer)
        self._pending: deque[asyncio.Future[Any]] = deque()
        self._transport: asyncio.Transport | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._ready: asyncio.Future[Any] | None = None
        self._closed: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = WriterStats()

    async def start(self) -> None:
        """Start the process and wait until it has opened the database."""
        loop = self._loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "router.storage.writer_process", str(theirs.fileno()),
                self._url.render_as_string(hide_password=False), str(self._checkpoint_every),
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._ready = loop.create_future()
        self._pending.append(self._ready)
        transport, _ = await loop.create_connection(lambda: _Protocol(self), sock=ours)
        self._transport = transport
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT_S)
        except BaseException:
            await self.close()
            raise
        logger.info("SQLite writer process %d started", self._process.pid)

    async def insert_decisions(self, rows: Sequence[dict[str, Any]]) -> None:
        await self._call(INSERT_DECISIONS, [portable_row(row) for row in rows])

    async def insert_outcome(self, values: dict[str, Any]) -> int:
        return int(await self._call(INSERT_OUTCOME, portable_row(values)))

    async def _call(self, op: str, payload: Any) -> Any:
        transport = self._transport
        if transport is None:
            raise _unavailable("the SQLite writer process is not running")
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Another event loop's thread (Litestar's test client runs the app's lifespan in a
            # loop of its own): the socket and the futures belong to the loop that started us.
            assert self._loop is not None
            return await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self._call(op, payload), self._loop))
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(future)
        transport.write(frame(self._encoder.encode((op, payload))))
        return await future

    def answered(self, body: bytes) -> None:
        answer = self._decoder.decode(body)
        if answer.stats is not None:
            self.stats = answer.stats
        if answer.status == STATS:
            return
        future = self._pending.popleft()
        if future.done():  # its caller was cancelled; the write itself happened or not alike
            return
        if answer.status == OK:
            future.set_result(answer.value)
        elif answer.status == DUPLICATE:
            future.set_exception(DuplicateWriteError(str(answer.value)))
        else:
            future.set_exception(
                _unavailable(f"the event log is unavailable: {answer.value}")
            )

    def lost(self, exc: Exception | None) -> None:
        was_running = self.running
        self._transport = None
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        while self._pending:
            future = self._pending.popleft()
            if not future.done():
                future.set_exception(_unavailable("the SQLite writer process exited"))
        if was_running:
            logger.error("the SQLite writer process exited (%s); hot-path writes go to the "
                         "loop's own connection from now on", exc or "connection closed")

    async def close(self) -> None:
        """Close the socket and wait for the process to commit what it holds and exit."""
        if self._transport is not None:
            self._closed = asyncio.get_running_loop().create_future()
            self._transport.close()
            self._transport = None
            await self._closed  # the socket is closed once the transport has let go of it
        process = self._process
        if process is not None:
            self._process = None
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                logger.error("the SQLite writer process did not stop; killing it")
                process.kill()
                await process.wait()

    @property
    def running(self) -> bool:
        """Whether calls can be sent: the socket is open (not closed, and the process has not
        closed its end)."""
        return self._transport is not None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid


class DuplicateWriteError(Exception):
    """The process's insert collided with an existing key; nothing of the request was kept."""


if __name__ == "__main__":
    os._exit(main(sys.argv[1:]))
