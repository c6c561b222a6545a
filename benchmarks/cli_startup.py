"""Start-up cost of the ``dance`` command: ``dance --help`` vs ``python -c "import torch"``, interleaved.

    python benchmarks/cli_startup.py [--repeats 5] [--command "dance run --help"]

Runs each command ``--repeats`` times, alternating them so both see the same machine load, and prints the median
wall seconds and the median CPU seconds (user + system of the child process, from ``os.wait4``) of each, plus the
load average. ``import torch`` is there for scale: a command that needs no model should cost far less than it.
Run it on an idle machine for the figure quoted in the README; on a busy one the wall times grow, the CPU times
much less.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time


def measure(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run of ``argv``, its output discarded."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{shlex.join(argv)} exited with {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--command", default="dance --help", help="the dance command line to time")
    args = parser.parse_args()
    dance = shlex.split(args.command)
    if dance and dance[0] == "dance" and shutil.which("dance") is None:
        dance = [sys.executable, "-c", "from dance.cli import main; main()", *dance[1:]]
    cases = {args.command: dance, 'python -c "import torch"': [sys.executable, "-c", "import torch"]}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for argv in cases.values():  # warm-up: file system cache, .pyc files
        measure(argv)
    for _ in range(args.repeats):
        for name, argv in cases.items():
            times[name].append(measure(argv))
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {args.repeats} interleaved runs each")
    width = max(map(len, cases))
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        print(f"{name:<{width}}  median wall {wall:.3f} s  median CPU {cpu:.3f} s")


if __name__ == "__main__":
    main()
