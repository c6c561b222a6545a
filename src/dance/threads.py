"""How many threads torch uses for the package's CPU training loops (pose encoder, concept layers), and how many
worker processes ``engine.workers=0`` starts.

torch starts one intra-op thread per core. On a machine whose cores are already busy — a shared workstation, a
CI runner, another run beside this one — those threads wait on each other. Measured on a loaded 2-core machine
(``benchmarks/torch_threads.py``, load average 2.7–3.9): pose-encoder training steps with 2 threads were often
~0.7× the time of 1 thread, but now and then 5–10× slower while another process held a core, so their mean was
higher; 1 thread stayed steady. So the default (``threads=0``) uses the cores that are not busy.

"Not busy" is measured where the work starts (each stage that trains, each worker pool), not once per process:
the CPU time the machine's cores spent busy over a short window (:data:`WINDOW` seconds, from ``/proc/stat``),
less this process's own CPU time over the same window, so the run's own work never counts against it. Two runs
started together on an idle machine used to both take every core, because the 1-minute load average both read at
their start was still low (two Penn Action features stages took ~29 minutes instead of ~6). A measurement is
reused for :data:`MAX_AGE` seconds. Where ``/proc/stat`` cannot be read (not Linux), the cores minus the 1-minute
load average are used instead.

A count taken when training starts still misses a run that starts later, and two runs that measure in the same
instant see each other idle (``benchmarks/torch_threads.py --pair`` has them in lockstep: both took 2). So the
training loops — the pose encoder's epochs, the concept layers' steps, the scene-bias models' epochs — re-count
as they go (:class:`Rebalance`) and settle at the free cores. ``--pair`` (two processes started together on an idle
2-core machine, training side by side): 2 threads each under the old rule, 0.65 s per step; 1 thread each from
the second epoch under this one, 0.29 s (2.2x).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: seconds over which busy cores are measured
WINDOW = 0.3
#: seconds a measurement is reused before the next call measures again
MAX_AGE = 10.0
#: seconds :class:`Rebalance` lets pass at least between two counts
MIN_INTERVAL = 2.0
_PROC_STAT = Path("/proc/stat")
_last: tuple[float, int] | None = None  # (time.monotonic() of the measurement, free cores)


def _cpus() -> set[int] | None:
    """The CPUs this process may run on (its affinity), or None where the OS does not say."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def available_cores() -> int:
    """Cores this process may use (its CPU affinity when the OS reports one)."""
    cpus = _cpus()
    return len(cpus) if cpus is not None else os.cpu_count() or 1


def busy_ticks(cpus: set[int] | None = None, stat: Path = _PROC_STAT) -> int | None:
    """Clock ticks the given CPUs (all when None) have spent busy since boot — everything in ``/proc/stat`` but
    idle and iowait (steal counts as busy: a hypervisor's other guests had the core) — or None where unreadable."""
    try:
        lines = stat.read_text().splitlines()
    except OSError:
        return None
    total, found = 0, False
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or not name[3:].isdigit():
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        try:
            ticks = [int(f) for f in fields[:8]]
        except ValueError:
            return None
        if len(ticks) < 5:
            return None
        total += sum(ticks) - ticks[3] - ticks[4]
        found = True
    return total if found else None


Sample = tuple[int, float, float]  # busy ticks of this process's CPUs, its own CPU seconds, time.monotonic()


def sample(cpus: set[int] | None) -> Sample | None:
    """Now, for :func:`others_between`; None where ``/proc/stat`` cannot be read."""
    ticks = busy_ticks(cpus)
    return None if ticks is None else (ticks, time.process_time(), time.monotonic())


def others_between(before: Sample, after: Sample) -> float | None:
    """Cores other processes kept busy between two samples: the machine's busy CPU time less this process's own,
    per second (None when no time passed)."""
    if after[2] <= before[2]:
        return None
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy = (after[0] - before[0]) / hz - (after[1] - before[1])
    return max(0.0, busy / (after[2] - before[2]))


def busy_cores_of_others(window: float = WINDOW) -> float | None:
    """Cores other processes kept busy over the next ``window`` seconds (:func:`others_between`), or None where
    ``/proc/stat`` cannot be read."""
    cpus = _cpus()
    before = sample(cpus)
    if before is None:
        return None
    time.sleep(window)
    after = sample(cpus)
    return None if after is None else others_between(before, after)


def free_cores(cores: int, busy: float) -> int:
    """``cores`` less ``busy`` (rounded half up), at least 1 and at most ``cores``."""
    return max(1, min(cores, math.floor(cores - busy + 0.5)))


def auto_threads() -> int:
    """Cores not busy with other processes' work: measured over :data:`WINDOW` seconds now (reused for
    :data:`MAX_AGE` seconds), or where that cannot be measured the cores minus the 1-minute load average."""
    global _last
    now = time.monotonic()
    if _last is not None and now - _last[0] < MAX_AGE:
        return _last[1]
    cores = available_cores()
    busy = busy_cores_of_others()
    if busy is None:
        try:
            busy = os.getloadavg()[0]
        except (AttributeError, OSError):
            busy = 0.0
    _last = (time.monotonic(), free_cores(cores, busy))
    return _last[1]


def forget() -> None:
    """Drop the reused measurement, so the next :func:`auto_threads` measures again."""
    global _last
    _last = None


class Rebalance:
    """Between the epochs (or progress steps) of a long training loop under ``threads=0``: count the cores other
    processes kept busy since the last count (at least :data:`MIN_INTERVAL` seconds: busy CPU time on this
    process's CPUs less this process's own, no waiting) and set torch's thread count to the free ones. A count
    taken when the stage started cannot see a run that starts later, nor one that reached its training in the same
    instant (both measured while both were idle); two runs that re-count each epoch settle at one thread each on
    two cores, and a run left alone takes the cores back. ``changes`` lists ``(step, threads)`` where the count
    changed (``step``: the n-th call of :meth:`step`). With a fixed ``threads`` setting it does nothing, nor while
    code inside the loop has set a count of its own (e.g. the final layer's one thread for small problems)."""

    def __init__(self, setting: int) -> None:
        import torch

        self.auto = setting <= 0
        self.steps = 0
        self.changes: list[tuple[int, int]] = []
        self._cpus, self._cores = _cpus(), available_cores()
        self._threads = torch.get_num_threads()  # the count this object set last (or found)
        self._mark = sample(self._cpus) if self.auto else None

    def step(self) -> None:
        """One epoch (or step) ended: re-count the free cores when enough time has passed since the last count."""
        import torch

        self.steps += 1
        if (self._mark is None or time.monotonic() - self._mark[2] < MIN_INTERVAL
                or torch.get_num_threads() != self._threads):
            return
        now = sample(self._cpus)
        busy = None if now is None else others_between(self._mark, now)
        if now is None or busy is None:
            return
        self._mark = now
        n = free_cores(self._cores, busy)
        if n != self._threads:
            torch.set_num_threads(n)
            self._threads = n
            self.changes.append((self.steps, n))

    def wrap(self, progress: Callable[..., None]) -> Callable[..., None]:
        """``progress`` (an epoch's or a step's callback, any arguments), re-counting after each call."""

        def call(*args: object) -> None:
            progress(*args)
            self.step()

        return call


def resolve_threads(setting: int) -> int:
    """A ``threads`` setting as a count: 0 = :func:`auto_threads`, else the setting itself."""
    return auto_threads() if setting <= 0 else int(setting)


@contextmanager
def torch_threads(setting: int) -> Iterator[int]:
    """Run the block with ``resolve_threads(setting)`` torch intra-op threads, then restore the previous count."""
    import torch

    before = torch.get_num_threads()
    n = resolve_threads(setting)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
