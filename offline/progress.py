"""Progress bars of the long commands (rich), on stderr and only when stderr is a terminal.

Standard output stays for results (tables, JSON); with stderr redirected to a file or a pipe,
as in tests and CI, nothing is drawn at all.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Bar:
    """One task of a rich progress display: advance it, or start a new stage on it."""

    def __init__(self, progress: Progress, task: TaskID, prefix: str) -> None:
        self._progress = progress
        self._task = task
        self._prefix = prefix
        self._stage = ""

    def advance(self, amount: float = 1) -> None:
        self._progress.advance(self._task, amount)

    def describe(self, description: str) -> None:
        """Show ``description`` beside the bar (the item in progress)."""
        self._progress.update(self._task, description=description)

    def stage(self, description: str, total: float | None) -> None:
        """Start over at 0 of ``total`` (None: unknown) for the next stage of the command."""
        self._progress.reset(self._task, total=total, description=description)

    def report(self, stage: str, done: int, total: int | None) -> None:
        """``done`` of ``total`` rows of ``stage`` (a callback for work that counts in stages,
        such as :func:`offline.replay.evaluate.evaluate`); a new stage starts over."""
        if stage != self._stage:
            self._stage = stage
            self.stage(f"{self._prefix}: {stage}", total)
        self._progress.update(self._task, completed=done)

    def log(self, message: str) -> None:
        """A line above the bar (on stderr, like the bar): a stage's result worth keeping."""
        self._progress.console.print(message, highlight=False, markup=False, soft_wrap=True)


@contextlib.contextmanager
def progress_bar(description: str, total: float | None = None, *, enabled: bool = True,
                 console: Console | None = None) -> Iterator[Bar]:
    """A bar from 0 to ``total`` (None: unknown, shown as a pulse) while the block runs.

    ``console`` defaults to stderr; the bar is drawn only when it is a terminal and ``enabled``,
    and disappears when the block ends (lines written with :meth:`Bar.log` stay).
    """
    console = console or Console(stderr=True)
    progress = Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(),
        MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=console, transient=True, disable=not (enabled and console.is_terminal),
        # Lines printed to stdout while the bar runs appear above it when stdout is the same
        # terminal; redirected (a file, a pipe, --json output), stdout is left alone.
        redirect_stdout=sys.stdout.isatty())
    with progress:
        yield Bar(progress, progress.add_task(description, total=total), description)
