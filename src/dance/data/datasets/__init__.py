"""Adapters for the four datasets of the DANCE paper: KTH, UCF-101, HAA500 (HAA-100) and Penn Action (RGB).

Each adapter reads a dataset in its *official* layout and split and returns a
:class:`~dance.data.index.VideoIndex`. It is registered (:func:`~dance.data.datasets.common.dataset_format`) in
:data:`DATASETS` and as a format of :func:`dance.data.formats.load_index` (``data.format=kth|ucf101|haa500|
penn_action``), so ``dance run --set data.format=kth --set data.path=/data/KTH`` works on a freshly unpacked
download. The expected layout, split and source of each are in the adapter's module docstring
(:mod:`~dance.data.datasets.kth`, :mod:`~dance.data.datasets.ucf101`, :mod:`~dance.data.datasets.haa500`,
:mod:`~dance.data.datasets.penn_action.rgb`) and in the README ("Datasets").

Shared behaviour: class names are those of the dataset; splits are named ``train`` / ``val`` / ``test`` (a dataset
without an official val split gets one from the pipeline's ``make_val_split``); ``classes`` keeps a subset of the
classes in the given order (HAA-100); ``split_id`` picks one of several official splits (UCF-101: 1-3; the others
have one); every missing piece (folder, split list, label file) is an :class:`~dance.errors.IndexFormatError` that
names the dataset, the path that was looked for and the expected layout, and per-video problems are listed together.
"""

from __future__ import annotations

import importlib

from dance.data.datasets.common import DATASETS, DatasetOptions

__all__ = ["DATASETS", "DATASET_FORMATS", "DatasetOptions"]

#: The shipped datasets: module ``dance.data.datasets.<name>`` registers dataset ``<name>``, in this order.
DATASET_FORMATS: tuple[str, ...] = ("kth", "ucf101", "haa500", "penn_action")
for _name in DATASET_FORMATS:
    importlib.import_module(f"{__name__}.{_name}")

