"""WAL checkpoints of a SQLite event log, run by the writer process in a thread of their own.

The writer's connection has ``wal_autocheckpoint=0``; after every ``checkpoint_every`` commits the
writer asks :class:`Checkpointer` for a checkpoint, which runs in passes. The first ones,
passive, run beside the writes and copy almost everything; the last holds the writes back (the
writer's lock), so that no commit lands meanwhile, and copies the few frames committed during
the others. Only a checkpoint that copied the whole WAL lets the next write start the WAL over
from its beginning: with passive checkpoints alone under a steady stream of commits that never
happens, the WAL grows without bound, and every read that misses SQLite's page cache searches an
ever longer WAL index.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import NamedTuple

from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

from router.storage.database import sqlite_sync_engine

logger = logging.getLogger("router.storage")

CHECKPOINT_EVERY = 256  # commits between checkpoints (about 9,000 WAL frames under load)
CATCH_UP_PASSES = 2  # passes beside the writes after the first, at most
CATCH_UP_FRAMES = 64  # frames left behind by a pass that are few enough to hold writes for


class CheckpointResult(NamedTuple):
    """What ``PRAGMA wal_checkpoint(PASSIVE)`` reports."""

    busy: int
    wal_frames: int  # frames in the WAL
    copied: int  # frames copied into the database file, this pass or earlier ones

    @property
    def complete(self) -> bool:
        return self.copied == self.wal_frames


def checkpoint_pass(connection: Connection) -> CheckpointResult:
    """Copy what it can of the WAL into the database file without waiting for anyone."""
    busy, wal_frames, copied = connection.execute(text("PRAGMA wal_checkpoint(PASSIVE)")).one()
    logger.debug("WAL checkpoint: busy %d, %d frames, %d copied", busy, wal_frames, copied)
    return CheckpointResult(busy, wal_frames, copied)


class Checkpointer:
    """Checkpoints of the SQLite file ``url`` in a thread: passes beside the writes, then one
    holding ``write_lock`` (see the module docstring); ``on_checkpoint`` runs after each."""

    def __init__(self, url: URL, write_lock: threading.Lock,
                 on_checkpoint: Callable[[], None]) -> None:
        self._engine = sqlite_sync_engine(url)
        self._write_lock = write_lock
        self._on_checkpoint = on_checkpoint
        self._wanted = threading.Event()
        self._stopping = False
        self.checkpoints = 0
        self.complete = 0  # the whole WAL copied: the next write starts it over
        self.wal_frames = -1  # frames in the WAL at the last checkpoint (-1: none yet)
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        self._wanted.set()  # one already under way covers the request too

    def _pass(self) -> CheckpointResult:
        with self._engine.begin() as connection:
            return checkpoint_pass(connection)

    def _checkpoint(self) -> CheckpointResult:
        # A pass counts only the frames there were when it started, so it reports "complete"
        # even when commits went on meanwhile: the last pass always holds the writes back.
        # Passes beside the writes repeat while they leave many frames behind, so that the
        # writes wait only for a few frames' copy and fsync.
        previous = self._pass()
        for _ in range(CATCH_UP_PASSES):
            result = self._pass()
            behind = result.wal_frames - previous.wal_frames  # committed during the last pass
            previous = result
            if behind <= CATCH_UP_FRAMES:
                break
        with self._write_lock:
            return self._pass()

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            self._wanted.clear()
            if self._stopping:
                return
            try:
                result = self._checkpoint()
            except Exception as exc:  # a failed checkpoint is retried at the next request
                logger.warning("WAL checkpoint failed: %s", exc)
                continue
            self.checkpoints += 1
            self.complete += int(result.complete)
            self.wal_frames = result.wal_frames
            if not result.complete:  # another process is reading an older snapshot, or writing
                logger.debug("WAL checkpoint incomplete: %s", result)
            self._on_checkpoint()

    def close(self) -> None:
        self._stopping = True
        self._wanted.set()
        self._thread.join()
        self._engine.dispose()
