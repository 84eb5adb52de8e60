"""One log line when the database becomes unavailable and one when it is back.

The background loops (the learner's tail every 0.25 s, the model and policy polls) and every
request meet an outage; logging each failure would bury the log in tracebacks. The database's
own error text goes to this log line only, never into a response body.
"""

from __future__ import annotations

import logging
import time

from router.errors import StorageUnavailableError

logger = logging.getLogger(__name__)

UNAVAILABLE = "the event log is unavailable"


class OutageLog:
    """Tracks whether the last database call failed; logs the transitions."""

    def __init__(self) -> None:
        self._since: float | None = None

    @property
    def down(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> StorageUnavailableError:
        """The error to raise for ``exc`` (a database failure); logs it if it starts an
        outage."""
        if self._since is None:
            self._since = time.monotonic()
            cause = getattr(exc, "orig", None) or exc
            logger.error("%s: %s: %s", UNAVAILABLE, type(cause).__name__,
                         str(cause).strip().replace("\n", " "))
        return StorageUnavailableError(UNAVAILABLE)

    def succeeded(self) -> None:
        if self._since is not None:
            logger.info("the event log is available again after %.1f s",
                        time.monotonic() - self._since)
            self._since = None
