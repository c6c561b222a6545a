"""Progress reporting for long stages: rich progress bars in the CLI, silence in tests and library use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class Reporter:
    """Silent base reporter: ``task(description, total)`` yields an ``advance(n=1)`` callable."""

    def __init__(self, console: Console | None = None):
        self.console = console

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        yield lambda n=1: None

    @contextmanager
    def tracker(self) -> Iterator[Callable[[str, int, int], None]]:
        """A callback ``(what, n, total)`` advancing one bar per ``what`` by ``n``; bars close on exit."""
        open_tasks: dict[str, tuple] = {}

        def advance(what: str, n: int, total: int) -> None:
            if what not in open_tasks:
                cm = self.task(what, total)
                open_tasks[what] = (cm, cm.__enter__())
            open_tasks[what][1](n)

        try:
            yield advance
        finally:
            for cm, _ in open_tasks.values():
                cm.__exit__(None, None, None)

    def info(self, message: str) -> None:
        if self.console is not None:
            self.console.print(message)


class RichReporter(Reporter):
    """Shows one rich progress bar per task."""

    def __init__(self, console: Console | None = None):
        super().__init__(console or Console(stderr=True))

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        columns = (TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=False) as bar:
            tid = bar.add_task(description, total=total)
            yield lambda n=1: bar.advance(tid, n)
