"""Adapters for the four datasets of the DANCE paper: KTH, UCF-101, HAA500 (HAA-100) and Penn Action (RGB).

Each adapter reads a dataset in its *official* layout and split and returns a
:class:`~dance.data.index.VideoIndex`; :func:`dance.data.index.load_index` dispatches to them by format name
(``data.format=kth|ucf101|haa500|penn_action``), so ``dance run --set data.format=kth --set data.path=/data/KTH``
works on a freshly unpacked download. The expected layout, split and source of each are in the adapter's module
docstring (:mod:`~dance.data.datasets.kth`, :mod:`~dance.data.datasets.ucf101`, :mod:`~dance.data.datasets.haa500`,
:mod:`~dance.data.datasets.penn_action_rgb`) and in the README ("Datasets").

Shared behaviour: class names are those of the dataset; splits are named ``train`` / ``val`` / ``test`` (a dataset
without an official val split gets one from the pipeline's ``make_val_split``); ``classes`` keeps a subset of the
classes in the given order (HAA-100); ``split_id`` picks one of several official splits (UCF-101: 1-3; the others
have one); every missing piece (folder, split list, label file) is an :class:`~dance.errors.IndexFormatError` that
names the dataset, the path that was looked for and the expected layout, and per-video problems are listed together.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dance.data.datasets._common import DatasetOptions
from dance.data.datasets.haa500 import load_haa500
from dance.data.datasets.kth import load_kth
from dance.data.datasets.penn_action_rgb import load_penn_action_rgb
from dance.data.datasets.ucf101 import load_ucf101
from dance.data.index import VideoIndex
from dance.errors import IndexFormatError

__all__ = ["DATASETS", "DatasetOptions", "load_dataset"]

#: Format name → adapter ``(root, options) -> VideoIndex``. The names are
#: :data:`dance.data.index.DATASET_FORMATS`.
DATASETS: dict[str, Callable[[Path, DatasetOptions], VideoIndex]] = {
    "kth": load_kth,
    "ucf101": load_ucf101,
    "haa500": load_haa500,
    "penn_action": load_penn_action_rgb,
}


def load_dataset(name: str, root: Path | str, options: DatasetOptions | None = None) -> VideoIndex:
    """Index dataset ``name`` (a key of :data:`DATASETS`) found at ``root``.

    Raises:
        IndexFormatError: unknown name, or any problem the adapter finds.
    """
    if name not in DATASETS:
        raise IndexFormatError(f"unknown dataset '{name}' (expected one of: {', '.join(DATASETS)})")
    return DATASETS[name](Path(root), options or DatasetOptions())
