"""The service's side of the SQLite writer process (router/storage/writer_process.py).

:class:`WriterProcess` starts the process, sends it decision batches and outcomes, and resolves
each caller's future when the process answers (answers come in request order). If the process
dies, the calls in flight fail with :class:`StorageUnavailableError` (503: their rows may or may
not be committed, and a retry is safe: a decision with a ``request_id`` is found again, a
second outcome is a duplicate); the next call starts a new process and waits for it.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Sequence

import msgspec
from sqlalchemy.engine import URL

from router.errors import StorageUnavailableError
from router.logs import current_setup
from router.storage.rows import DecisionRow, OutcomeRow
from router.storage.writer_process import (
    DUPLICATE,
    LENGTH,
    OK,
    STATS,
    Answer,
    InsertDecisions,
    InsertOutcome,
    WriterRequest,
    WriterStats,
    frame,
)

logger = logging.getLogger("router.storage")

START_TIMEOUT_S = 60.0  # importing SQLAlchemy and opening the file; seconds on a loaded machine
STOP_TIMEOUT_S = 30.0


class DuplicateWriteError(Exception):
    """The process's insert collided with an existing key; nothing of the request was kept."""


class _Protocol(asyncio.Protocol):
    def __init__(self, client: _Connection) -> None:
        self._client = client
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= LENGTH.size:
            (size,) = LENGTH.unpack_from(buffer, start)
            end = start + LENGTH.size + size
            if len(buffer) < end:
                break
            self._client.answered(bytes(buffer[start + LENGTH.size:end]))
            start = end
        if start:
            del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._client.lost(exc)


class _Connection:
    """One started process: its socket, its child handle and the callers awaiting answers."""

    def __init__(self, owner: WriterProcess) -> None:
        self._owner = owner
        self._decoder = msgspec.msgpack.Decoder(Answer)
        self.pending: deque[asyncio.Future[int | str | None]] = deque()
        self.transport: asyncio.Transport | None = None
        self.child: asyncio.subprocess.Process | None = None
        self.closed: asyncio.Future[None] | None = None

    def answered(self, body: bytes) -> None:
        answer = self._decoder.decode(body)
        if answer.stats is not None:
            self._owner.stats = answer.stats
        if answer.status == STATS:
            return
        future = self.pending.popleft()
        if future.done():  # its caller was cancelled; the write itself happened or not alike
            return
        if answer.status == OK:
            future.set_result(answer.value)
        elif answer.status == DUPLICATE:
            future.set_exception(DuplicateWriteError(str(answer.value)))
        else:
            future.set_exception(
                StorageUnavailableError(f"the event log is unavailable: {answer.value}"))

    def lost(self, exc: Exception | None) -> None:
        was_open = self.transport is not None
        self.transport = None
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)
        while self.pending:
            future = self.pending.popleft()
            if not future.done():
                future.set_exception(
                    StorageUnavailableError("the SQLite writer process exited"))
        if was_open:
            logger.error("the SQLite writer process exited (%s); the next write starts a new "
                         "one", exc or "connection closed")


class WriterProcess:
    """The service's handle on the writer process of the SQLite file ``url``:
    :meth:`insert_decisions` and :meth:`insert_outcome` return once the process has committed,
    or raise what the commit raised (:class:`DuplicateWriteError`,
    :class:`StorageUnavailableError`)."""

    def __init__(self, url: URL, *, checkpoint_every: int) -> None:
        self._url = url
        self._checkpoint_every = checkpoint_every
        self._encoder = msgspec.msgpack.Encoder()
        self._connection: _Connection | None = None
        self._starting: asyncio.Lock | None = None
        self._stopped = False
        self.stats = WriterStats()  # the running process's counters
        self.starts = 0

    async def start(self) -> None:
        """Start the process, unless it runs, and wait until it has opened the database
        (raises :class:`StorageUnavailableError` with the reason when it cannot). The first
        write starts it too."""
        await self._running()

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        connection = _Connection(self)
        ours, theirs = socket.socketpair()
        log_level, log_format = current_setup()  # the process logs like this one
        try:
            connection.child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "router.storage.writer_process", str(theirs.fileno()),
                self._url.render_as_string(hide_password=False), str(self._checkpoint_every),
                str(log_level), log_format,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        ready: asyncio.Future[int | str | None] = loop.create_future()
        connection.pending.append(ready)
        transport, _ = await loop.create_connection(lambda: _Protocol(connection), sock=ours)
        connection.transport = transport
        try:
            await asyncio.wait_for(asyncio.shield(ready), START_TIMEOUT_S)
        except BaseException:
            await self._stop(connection)
            raise
        self._connection = connection
        self.stats = WriterStats()
        self.starts += 1

    async def insert_decisions(self, rows: Sequence[DecisionRow]) -> None:
        await self._call(InsertDecisions(list(rows)))

    async def insert_outcome(self, row: OutcomeRow) -> int:
        seq = await self._call(InsertOutcome(row))
        assert isinstance(seq, int)
        return seq

    async def _call(self, request: WriterRequest) -> int | str | None:
        connection = await self._running()
        transport = connection.transport
        if transport is None:  # it died while this call waited for it to start
            raise StorageUnavailableError("the SQLite writer process exited")
        future: asyncio.Future[int | str | None] = asyncio.get_running_loop().create_future()
        connection.pending.append(future)
        transport.write(frame(self._encoder.encode(request)))
        return await future

    async def _running(self) -> _Connection:
        """The running process's connection, after starting one if none runs (the first
        call, or the last process died)."""
        connection = self._connection
        if connection is not None and connection.transport is not None:
            return connection
        if self._stopped:
            raise StorageUnavailableError("the SQLite writer process is stopped")
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:  # one start for every caller that found none running
            connection = self._connection
            if connection is None or connection.transport is None:
                if connection is not None:
                    self._connection = None
                    await self._stop(connection)  # reap the dead one
                await self._start()
        assert self._connection is not None
        return self._connection

    async def close(self) -> None:
        """Close the socket and wait for the process to commit what it holds and exit."""
        self._stopped = True
        if self._connection is not None:
            await self._stop(self._connection)

    async def _stop(self, connection: _Connection) -> None:
        transport, connection.transport = connection.transport, None
        if transport is not None:
            connection.closed = asyncio.get_running_loop().create_future()
            transport.close()
            await connection.closed  # the socket is closed once the transport has let go of it
        child = connection.child
        if child is not None:
            try:
                await asyncio.wait_for(child.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                logger.error("the SQLite writer process did not stop; killing it")
                child.kill()
                await child.wait()

    @property
    def running(self) -> bool:
        """Whether a process is up (its socket open at both ends)."""
        return self._connection is not None and self._connection.transport is not None

    @property
    def pid(self) -> int | None:
        connection = self._connection
        return None if connection is None or connection.child is None else connection.child.pid

    @property
    def returncode(self) -> int | None:
        connection = self._connection
        return None if connection is None or connection.child is None else (
            connection.child.returncode)
