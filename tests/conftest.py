"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def single_thread():
    """Tiny torch problems: one thread is faster and immune to CPU contention from other jobs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def rgb(tmp_path_factory, single_thread) -> Path:
    """A finished rgb run (random-3dconv features; tests/_inspect_runs.py), built once per test process."""
    from _inspect_runs import rgb_run  # imports the pipeline: only for the tests that ask for a run

    return rgb_run(tmp_path_factory)


@pytest.fixture(scope="module")
def pose(tmp_path_factory, single_thread) -> Path:
    """A finished pose run (a trained pose-encoder backbone; tests/_inspect_runs.py), built once per test process."""
    from _inspect_runs import pose_run

    return pose_run(tmp_path_factory)
