"""How many threads torch uses for the package's CPU training loops (pose encoder, concept layers).

torch starts one intra-op thread per core. On a machine whose cores are already busy — a shared workstation, a
CI runner, another run beside this one — those threads wait on each other. Measured on a loaded 2-core machine
(``benchmarks/torch_threads.py``, load average 2.7–3.9): pose-encoder training steps with 2 threads were often
~0.7× the time of 1 thread, but now and then 5–10× slower while another process held a core, so their mean was
higher; 1 thread stayed steady. So the default (``threads=0``) counts the cores that are not
busy — the machine's cores minus its 1-minute load average, at least 1 — once per process, when a run starts
(``run_pipeline`` asks before its first stage, so the run's own earlier stages do not count as load), and uses
that many.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager


def available_cores() -> int:
    """Cores this process may use (its CPU affinity when the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@functools.lru_cache(maxsize=1)
def auto_threads() -> int:
    """Cores not busy: available cores minus the 1-minute load average (rounded), at least 1. Measured once per
    process, at the first call (``run_pipeline`` makes it before any stage)."""
    cores = available_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, math.floor(cores - load + 0.5)))


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
