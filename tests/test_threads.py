"""dance.threads: the torch thread count of the training loops."""

from __future__ import annotations

import torch

from dance import threads


def test_auto_threads_is_between_one_and_the_cores(monkeypatch) -> None:
    threads.auto_threads.cache_clear()
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (1.6, 0.0, 0.0))
    assert threads.auto_threads() == 1  # one core is busy
    threads.auto_threads.cache_clear()
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.1, 0.0, 0.0))
    assert threads.auto_threads() == 2
    threads.auto_threads.cache_clear()
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert threads.auto_threads() == 1  # never zero
    threads.auto_threads.cache_clear()
    assert threads.resolve_threads(3) == 3


def test_torch_threads_restores_the_previous_count() -> None:
    before = torch.get_num_threads()
    with threads.torch_threads(1) as n:
        assert n == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
