"""Progress reporting for long stages: rich progress bars in the CLI, silence in tests and library use.

Messages are rich markup. Stages colour their own words (``[yellow]skipped[/yellow]``) but also interpolate file
names, errors and install hints (``pip install 'dance-xai[pose]'``) in which rich would eat ``[pose]`` as a tag,
or fail on a stray ``[/x]``: :func:`markup_safe` keeps the style tags and escapes every other bracket.

While a stage runs, the runner makes its reporter the :func:`current_reporter`, so deep library code (the
baseline's linear probe) can show a bar without a reporter being passed down to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from rich.console import Console
from rich.errors import StyleSyntaxError
from rich.markup import RE_TAGS, escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.style import Style


def markup_safe(text: str) -> str:
    """``text`` with every ``[...]`` that is not a style tag (``[dim]``, ``[bold red]``, a matching ``[/…]``)
    escaped, so that rich prints it as written and never raises on it."""
    out: list[str] = []
    pos = 0
    open_tags: list[str] = []
    for m in RE_TAGS.finditer(text):
        out.append(text[pos:m.start()])
        pos = m.end()
        whole, slashes, tag = m.group(0), m.group(2), m.group(3)
        keep = bool(slashes)  # already escaped by the caller: rich prints it literally
        if not keep and tag.startswith("/"):
            name = tag[1:].strip()
            if open_tags and (not name or name in open_tags):
                open_tags.pop(len(open_tags) - 1 - open_tags[::-1].index(name) if name else -1)
                keep = True
        elif not keep:
            try:
                Style.parse(tag)
            except StyleSyntaxError:
                pass
            else:
                open_tags.append(tag.strip())
                keep = True
        out.append(whole if keep else escape(whole))
    out.append(text[pos:])
    return "".join(out)


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
        """Print ``message`` (rich markup; brackets that are not style tags are printed as written)."""
        if self.console is not None:
            self.console.print(markup_safe(message))


class RichReporter(Reporter):
    """Shows one rich progress bar per task."""

    def __init__(self, console: Console | None = None):
        super().__init__(console or Console(stderr=True))

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        columns = (TextColumn("  {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=False) as bar:
            tid = bar.add_task(escape(description), total=total)
            yield lambda n=1: bar.advance(tid, n)


_CURRENT: ContextVar[Reporter | None] = ContextVar("dance_reporter", default=None)


def current_reporter() -> Reporter:
    """The reporter of the stage running now (a silent one outside a stage)."""
    return _CURRENT.get() or Reporter()


@contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Make ``reporter`` the :func:`current_reporter` inside the block."""
    token = _CURRENT.set(reporter)
    try:
        yield reporter
    finally:
        _CURRENT.reset(token)
