"""Reading and writing stage artifacts (arrays as .npz, tables as JSON) in a run directory."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from dance.data.index import VideoIndex
from dance.errors import StageError
from dance.runs import atomic_write_bytes


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise StageError(f"missing artifact {path}: rerun the stage that writes it (or use --force)")
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def run_index(stage_dir: Path) -> VideoIndex:
    """The index the run works on (written by the index stage)."""
    return VideoIndex.from_csv(stage_dir / "index.csv")
