"""Handing a stage's videos to worker processes in index order vs largest first (``engine.run_uncached`` with
``sizes``; :func:`dance.pipeline.engine.largest_first`).

    python benchmarks/work_order.py [--folder ../shared/data/clips] [--copies 1 4] [--workers 2 4]
                                    [--seconds 4] [--repeats 3]

The work of each item is a sleep proportional to one file's bytes (the real clips' by default, each repeated
``--copies`` times under names that sort copy by copy, as ``benchmarks/engines.py`` names them), scaled so that
one worker would need ``--seconds``. A sleep keeps the cores free, so the figures show the scheduling alone,
unchanged by what else the machine runs; the sizes stand for the stages' work, which grows with the file (decoding,
poses). The items go through the engine's own pool (``run_items``: spawned worker processes, the items
handed out as workers free up) once per order and repeat, interleaved (index, largest, index, ...). Each row gives
the median wall seconds of both orders, the lower bound (the larger of the total work over the workers and the
largest item), the pool's start-up measured apart (one item of no work), their ratio, and the finish both orders
would have with no overhead at all (greedy list scheduling computed, not run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from dance.pipeline.engine import file_size, largest_first, run_items

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = ROOT.parent / "shared" / "data" / "clips"


def _sleeper():  # noqa: ANN202 - the engine's worker factory: an item is seconds to sleep
    return time.sleep


def simulated(durations: list[float], workers: int) -> float:
    """The finish of greedy list scheduling (each item to the first worker free), with no overhead."""
    free = [0.0] * workers
    for d in durations:
        free[free.index(min(free))] += d
    return max(free)


def timed(durations: list[float], workers: int) -> float:
    start = time.perf_counter()
    for _ in run_items(durations, _sleeper, workers):
        pass
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folder", type=Path, default=DEFAULT_FOLDER, help="files whose sizes are the items' work")
    ap.add_argument("--copies", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    ap.add_argument("--seconds", type=float, default=4.0, help="one worker's total work, seconds")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    files = sorted(p for p in args.folder.iterdir() if p.is_file()) if args.folder.is_dir() else []
    sizes = [file_size(p) for p in files]
    if not sizes or sum(sizes) == 0:
        print(f"no files to size in {args.folder}", file=sys.stderr)
        return 2
    if min(args.copies + args.workers + [args.repeats]) < 1 or args.seconds <= 0:
        print("--copies, --workers and --repeats must be at least 1 and --seconds positive", file=sys.stderr)
        return 2
    print(f"{len(files)} files in {args.folder} ({min(sizes) / 1e3:.0f}-{max(sizes) / 1e3:.0f} kB)")
    print(f"{'items':>6s}{'workers':>8s}{'index order s':>15s}{'largest first s':>17s}{'lower bound s':>15s}"
          f"{'pool start s':>14s}{'index / largest':>17s}{'no-overhead finish s':>22s}")
    for copies in args.copies:
        work = [s for _ in range(copies) for s in sizes]  # copy k's files named c{k}_<name>: sorted by k, then name
        index_order = [w * args.seconds / sum(work) for w in work]
        largest = [index_order[i] for i in largest_first(index_order)]
        for workers in args.workers:
            start = statistics.median(timed([0.0], workers) for _ in range(args.repeats))
            walls: dict[str, list[float]] = {"index": [], "largest": []}
            for _ in range(args.repeats):
                walls["index"].append(timed(index_order, workers))
                walls["largest"].append(timed(largest, workers))
            a, b = statistics.median(walls["index"]), statistics.median(walls["largest"])
            bound = max(args.seconds / workers, max(index_order))
            print(f"{len(work):>6d}{workers:>8d}{a:>15.2f}{b:>17.2f}{bound:>15.2f}{start:>14.2f}{a / b:>17.2f}"
                  f"{simulated(index_order, workers):>11.2f} / {simulated(largest, workers):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
