"""dance.threads: the torch thread count of the training loops."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from dance import threads

STAT = """cpu  500 0 100 1000 50 0 0 0 0 0
cpu0 200 0 50 500 20 0 0 10 0 0
cpu1 300 0 50 500 30 0 0 0 0 0
intr 12345
"""


@pytest.fixture(autouse=True)
def _fresh_measurement():
    threads.forget()
    yield
    threads.forget()


def test_free_cores_is_between_one_and_the_cores() -> None:
    assert threads.free_cores(2, 1.6) == 1  # one core is busy
    assert threads.free_cores(2, 0.4) == 2
    assert threads.free_cores(2, 9.0) == 1  # never zero
    assert threads.free_cores(4, 0.0) == 4
    assert threads.resolve_threads(3) == 3


def test_busy_ticks_reads_the_per_cpu_lines(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text(STAT)
    # busy = all fields but idle (4th) and iowait (5th); steal (8th) counts as busy
    assert threads.busy_ticks(None, stat) == (200 + 50 + 10) + (300 + 50)
    assert threads.busy_ticks({1}, stat) == 350
    assert threads.busy_ticks({7}, stat) is None  # none of the CPUs listed
    stat.write_text("cpu0 a b c d e\n")
    assert threads.busy_ticks(None, stat) is None
    assert threads.busy_ticks(None, tmp_path / "missing") is None


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_this_process_own_work_does_not_count_as_busy(monkeypatch) -> None:
    """A thread of this process spinning through the window is this run's own work: on a machine where it is the
    only busy work (the CPU ticks are this process's CPU time), nothing counts as other processes' load."""
    import os
    import threading

    hz = os.sysconf("SC_CLK_TCK")
    monkeypatch.setattr(threads, "busy_ticks", lambda cpus=None: round(time.process_time() * hz) + 1000)
    spinner = threading.Thread(target=_spin, args=(0.5,))
    spinner.start()
    try:
        busy = threads.busy_cores_of_others(0.3)
    finally:
        spinner.join()
    assert busy is not None and busy < 0.2


@pytest.mark.skipif(threads.busy_ticks() is None, reason="no /proc/stat on this system")
def test_busy_cores_of_others_on_this_machine() -> None:
    busy = threads.busy_cores_of_others(0.1)
    assert busy is not None and 0.0 <= busy <= threads.available_cores() + 0.5


def test_auto_threads_measures_when_asked_and_reuses_for_a_while(monkeypatch) -> None:
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    seen = iter([1.7, 0.1])
    calls = []
    monkeypatch.setattr(threads, "busy_cores_of_others", lambda: calls.append(1) or next(seen))
    assert threads.auto_threads() == 1  # another process keeps one core busy
    assert threads.auto_threads() == 1 and len(calls) == 1  # reused within MAX_AGE
    monkeypatch.setattr(threads, "MAX_AGE", 0.0)
    assert threads.auto_threads() == 2 and len(calls) == 2  # measured again: the other process finished


def test_auto_threads_falls_back_to_the_load_average(monkeypatch) -> None:
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores_of_others", lambda: None)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.6, 0.0, 0.0))
    assert threads.auto_threads() == 1


class _Clock:
    """A fake machine for Rebalance: busy ticks of the other processes and of this one, time, own CPU."""

    def __init__(self, monkeypatch) -> None:
        import os

        self.hz, self.t, self.own, self.other = os.sysconf("SC_CLK_TCK"), 0.0, 0.0, 0.0
        monkeypatch.setattr(threads, "available_cores", lambda: 2)
        monkeypatch.setattr(threads, "busy_ticks", lambda cpus=None: round((self.own + self.other) * self.hz))
        monkeypatch.setattr(threads.time, "monotonic", lambda: self.t)
        monkeypatch.setattr(threads.time, "process_time", lambda: self.own)

    def epoch(self, seconds: float, own_cores: float, other_cores: float) -> None:
        self.t += seconds
        self.own += seconds * own_cores
        self.other += seconds * other_cores


@pytest.fixture
def clock(monkeypatch):
    """The fake machine; torch's thread count is restored after the test."""
    before = torch.get_num_threads()
    yield _Clock(monkeypatch)
    torch.set_num_threads(before)


def test_rebalance_gives_cores_to_a_run_that_starts_later_and_takes_them_back(clock) -> None:
    torch.set_num_threads(2)
    r = threads.Rebalance(0)
    seen = []
    step = r.wrap(seen.append)
    clock.epoch(3.0, own_cores=2.0, other_cores=0.0)  # alone: keeps both cores
    step(1)
    assert torch.get_num_threads() == 2 and r.changes == []
    clock.epoch(1.0, own_cores=1.3, other_cores=0.7)  # another run starts: too short a time to count yet
    step(1)
    assert torch.get_num_threads() == 2
    clock.epoch(2.0, own_cores=1.3, other_cores=0.7)
    step(1)
    assert torch.get_num_threads() == 1 and r.changes == [(3, 1)]
    clock.epoch(3.0, own_cores=1.0, other_cores=0.0)  # the other run finished
    step(1)
    assert torch.get_num_threads() == 2 and r.changes == [(3, 1), (4, 2)]
    assert seen == [1, 1, 1, 1]  # the wrapped progress still sees every epoch


def test_rebalance_leaves_a_fixed_thread_count_alone(clock) -> None:
    torch.set_num_threads(2)
    r = threads.Rebalance(2)
    clock.epoch(5.0, own_cores=1.0, other_cores=2.0)
    r.step()
    assert torch.get_num_threads() == 2 and r.changes == [] and r.steps == 1


def test_rebalance_leaves_a_count_set_inside_the_loop_alone(clock) -> None:
    """The final layer sets one thread for small problems and restores the count after: a re-count in between
    must not undo it."""
    torch.set_num_threads(1)
    r = threads.Rebalance(0)
    with threads.torch_threads(2):  # code inside the loop chose its own count
        clock.epoch(5.0, own_cores=2.0, other_cores=1.0)
        r.step()
        assert torch.get_num_threads() == 2 and r.changes == []
    clock.epoch(5.0, own_cores=1.0, other_cores=0.0)  # back in the loop: re-counted (the machine is free)
    r.step()
    assert torch.get_num_threads() == 2 and r.changes == [(2, 2)]


def test_torch_threads_restores_the_previous_count() -> None:
    before = torch.get_num_threads()
    with threads.torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
