"""Per-video work of the extraction stages: in this process, over worker processes (``engine.workers``) or on Ray.

A stage hands :func:`run_items` the videos it still has to do (those not in its per-video cache,
:mod:`dance.pipeline.stage_cache`) and a picklable *worker factory*. Each worker process calls the factory once —
so a model (MediaPipe's graph, a pose source's files) is loaded once per process, not once per video — and then
its worker on video after video. Outcomes come back as videos finish, in any order: the stage writes each to its
cache as it arrives and assembles its artifact in index order at the end, so every worker count writes the same
bytes, and a stage stopped half-way keeps what finished. The engine is not a setting any stage fingerprint reads.

An item whose worker raises one of the stage's *skip* errors (by default any :class:`~dance.errors.DanceError`)
comes back as a skip with the error's message (the stage reports it); any other exception stops the stage. Worker
processes are started with ``spawn`` (forking a process that holds torch's or MediaPipe's threads is unsafe) and
run torch on one thread each: the pool, not torch, uses the cores.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from dance.config import EngineSettings
from dance.errors import DanceError, StageError
from dance.progress import Reporter
from dance.threads import resolve_threads

__all__ = ["ChunkMap", "Outcome", "file_size", "largest_first", "run_items", "run_uncached", "worker_count"]

#: Below this many videos to do, ``engine.workers=0`` (auto) stays in this process: starting a worker (a fresh
#: interpreter importing the stage's module and building its model: ~2 s for MediaPipe) costs more than a few
#: videos' work, and for pose files, read in milliseconds, far more.
MIN_ITEMS_FOR_POOL = 100


@dataclass(frozen=True)
class Outcome:
    """One item's result: its position in the items handed in, and its value or the reason it was skipped."""

    position: int
    value: Any = None
    skip: str | None = None


def worker_count(setting: int, n_items: int, engine: str = "local") -> int:
    """Workers for ``n_items`` videos under an ``engine.workers`` setting: for the local engine 1 means this
    process; 0 (auto): the cores other processes leave free when the stage starts
    (:func:`dance.threads.auto_threads`), and for the local engine this process when there are fewer than
    :data:`MIN_ITEMS_FOR_POOL` videos (Ray was asked for: its actors); never more workers than videos."""
    if setting <= 0 and n_items < MIN_ITEMS_FOR_POOL and engine == "local":
        return 1
    return max(1, min(resolve_threads(setting), n_items))


def _call(worker: Callable[[Any], Any], position: int, item: Any, skips: tuple[type[Exception], ...]) -> Outcome:
    try:
        return Outcome(position, worker(item))
    except skips as e:
        return Outcome(position, skip=str(e))


_WORKER: Callable[[Any], Any] | None = None
_SKIPS: tuple[type[Exception], ...] = (DanceError,)


def _start_worker(factory: Callable[[], Callable[[Any], Any]], skips: tuple[type[Exception], ...]) -> None:
    global _WORKER, _SKIPS
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    _WORKER, _SKIPS = factory(), skips


def _work(position: int, item: Any) -> Outcome:
    assert _WORKER is not None, "worker process started without its factory"
    return _call(_WORKER, position, item, _SKIPS)


def run_items(items: Sequence[Any], factory: Callable[[], Callable[[Any], Any]], workers: int,
              local: Callable[[Any], Any] | None = None, skips: tuple[type[Exception], ...] = (DanceError,),
              engine: str = "local", address: str = "") -> Iterator[Outcome]:
    """Outcomes of every item, as they finish. ``engine="local"``: in this process when ``workers`` is 1 (with
    ``local``, a worker the caller already holds, else ``factory()``), else over ``workers`` spawned processes,
    each holding ``factory()``; ``engine="ray"``: over ``workers`` Ray actors (:mod:`dance.pipeline.ray_engine`;
    ``address``: the cluster, empty for a local instance). A worker that dies (a crash in native code) is a
    :class:`~dance.errors.StageError` naming how many items had finished; leaving the loop early (an exception,
    ^C) cancels the items not started."""
    if not items:
        return
    if engine == "ray":
        from dance.pipeline.ray_engine import ray_outcomes

        for position, value, skip in ray_outcomes(items, factory, workers, skips, address):
            yield Outcome(position, value, skip)
        return
    if workers <= 1:
        worker = local if local is not None else factory()
        for position, item in enumerate(items):
            yield _call(worker, position, item, skips)
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_start_worker, initargs=(factory, skips))
    finished = 0
    try:
        pending: set[Future] = {pool.submit(_work, i, item) for i, item in enumerate(items)}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = future.result()
                finished += 1
                yield outcome
    except BrokenProcessPool as e:
        raise StageError(f"a worker process died after {finished} of {len(items)} videos (finished ones are "
                         f"cached; engine.workers=1 runs in this process and shows the error; a Python script that "
                         f"calls run_pipeline needs an `if __name__ == \"__main__\":` guard, as workers are "
                         f"spawned and import it): {e}") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def file_size(path: str | os.PathLike) -> int:
    """A file's bytes, as a work estimate for :func:`largest_first`; 0 when it cannot be read (the stage reports
    that video's skip)."""
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def largest_first(sizes: Sequence[int]) -> list[int]:
    """Positions of ``sizes``, largest first (ties in the given order). Workers take the next item as they free
    up, so handing out the long videos first leaves short ones for the end, when some workers already idle: the
    longest-processing-time rule (Graham, 1969: a finish within 4/3 of the best possible), where index order can end on
    one long video with every other worker idle."""
    return sorted(range(len(sizes)), key=lambda i: -sizes[i])


def run_uncached(engine: EngineSettings, reporter: Reporter, what: str, rows: Sequence[int], items: Sequence[Any],
                 factory: Callable[[], Callable[[Any], Any]], save: Callable[[int, Any], None], total: int,
                 done_before: int, local: Callable[[Any], Any] | None = None,
                 skips: tuple[type[Exception], ...] = (DanceError,), size: Callable[[Any], int] | None = None,
                 ) -> tuple[dict[int, Any], dict[int, str], int]:
    """A stage's videos not yet cached (``rows``, with their ``items``) on the run's engine, under a progress bar
    ``what`` of ``total`` videos of which ``done_before`` came from the cache; ``save(row, value)`` writes each
    finished video's cache entry as it arrives. ``size(item)``: an estimate of an item's work (its file's bytes);
    with more than one worker the items are handed out largest first (:func:`largest_first`; one worker keeps
    index order and sizes nothing). Returns the values and the skip reasons by row, and the worker count."""
    n_workers = worker_count(engine.workers, len(rows), engine.name)
    if size is not None and n_workers > 1:
        order = largest_first([size(item) for item in items])
        rows, items = [rows[i] for i in order], [items[i] for i in order]
    if engine.name == "ray":
        what = f"{what} ({n_workers} Ray actor{'s' * (n_workers > 1)})"
    elif n_workers > 1:
        what = f"{what} ({n_workers} worker processes)"
    values: dict[int, Any] = {}
    skipped: dict[int, str] = {}
    with reporter.task(what, total) as advance:
        advance(done_before)
        for outcome in run_items(items, factory, n_workers, local=local, skips=skips, engine=engine.name,
                                 address=engine.ray_address):
            row = rows[outcome.position]
            if outcome.skip is not None:
                skipped[row] = outcome.skip
            else:
                values[row] = outcome.value
                save(row, outcome.value)
            advance()
    return values, skipped, n_workers


class ChunkMap:
    """``map_chunks`` of :func:`dance.encoders.video_cache.encode_videos_cached` on the run's engine: chunks of
    videos → ``(chunk position, result)`` as they finish. ``factory`` builds a worker (a model loaded once) in each
    worker process or Ray actor; ``local``, when given, builds the worker this process runs when one worker is
    enough (e.g. from a model the caller already holds). Every chunk is one call of the worker, whatever runs it,
    so every engine batches the same videos together. :attr:`workers`: how many ran the last call."""

    def __init__(self, engine: EngineSettings, factory: Callable[[], Callable[[Any], Any]],
                 local: Callable[[], Callable[[Any], Any]] | None = None):
        self.engine, self.factory, self.local = engine, factory, local
        self.workers = 1

    def __call__(self, chunks: Sequence[Sequence[Any]]) -> Iterator[tuple[int, Any]]:
        self.workers = worker_count(self.engine.workers, sum(len(c) for c in chunks), self.engine.name)
        local = None
        if self.workers <= 1 and self.engine.name == "local" and self.local is not None:
            local = self.local()
        for outcome in run_items(chunks, self.factory, self.workers, local=local, skips=(), engine=self.engine.name,
                                 address=self.engine.ray_address):
            yield outcome.position, outcome.value
