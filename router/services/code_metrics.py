"""Code metrics of feedback, computed in a worker process within a size and time budget.

``compute_code_metrics`` parses Python with ``ast`` and scans other languages with regular
expressions: ~0.5 ms per 1,000 characters, holding the GIL the whole time, so a thread would
still stall the event loop (loop ticks of 8 ms median, 33 ms worst, while a thread measured
200,000 characters; 1 ms median in a worker process). One worker process, started on first use
and shared by every request of this service process, bounds the CPU that metrics take; code
longer than ``max_chars`` is not measured at all, and a measurement not back within
``timeout_s`` is given up (a waiting one is cancelled). Either way the outcome keeps
``code_metrics`` empty, as when no code was sent. The worker exits when the service does, even
after a SIGKILL.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor, ProcessPoolExecutor
from typing import TYPE_CHECKING

from learners.code_metrics import CodeMetrics, compute_code_metrics

if TYPE_CHECKING:  # the worker process imports this module: keep its start-up light
    from router.settings import CodeMetricsSettings

logger = logging.getLogger(__name__)
PARENT_POLL_S = 1.0


def create_worker_pool() -> Executor:
    """One worker process; "spawn", because a fork would copy the locks of the service's
    threads (SQLite, VW) in whatever state they are."""
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=exit_with_parent,
        initargs=(os.getpid(),),
    )


def exit_with_parent(parent: int) -> None:
    """In the worker: exit once ``parent`` is gone. A pool's worker outlives a SIGKILLed
    service otherwise (it holds both ends of its task queue, so it never reads end-of-file)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


class CodeMetricsRunner:
    """Measures feedback code off the event loop; ``submitted`` counts measurements started."""

    def __init__(
        self,
        settings: CodeMetricsSettings,
        create_executor: Callable[[], Executor] = create_worker_pool,
    ) -> None:
        self.settings = settings
        self.create_executor = create_executor
        self._executor: Executor | None = None  # started on first use
        self.submitted = 0

    async def measure(self, code: str, language: str) -> CodeMetrics | None:
        """Metrics of ``code``; None when it is over the size budget or took too long."""
        if len(code) > self.settings.max_chars:
            return None
        self.submitted += 1
        if self._executor is None:
            self._executor = self.create_executor()
        future = asyncio.wrap_future(self._executor.submit(compute_code_metrics, code, language))
        try:
            return await asyncio.wait_for(future, self.settings.timeout_s)
        except BrokenExecutor:
            # The worker died (killed, out of memory): start another for the next request.
            logger.error("the code metrics worker process died; starting another")
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            return None
        except TimeoutError:
            logger.warning(
                "code metrics of %d characters took over %.1f s; stored without them",
                len(code), self.settings.timeout_s,
            )
            return None

    def close(self) -> None:
        """Stop the worker process (a measurement that is running finishes first)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
