"""Reading a dataset's index: :func:`load_index` and the registry of on-disk formats, :data:`FORMATS`.

``fmt`` (``data.format``) names an entry of :data:`FORMATS`; each is a reader
``(source, request) -> VideoIndex`` registered with ``@FORMATS.register(name, description)``:

- ``auto`` (:mod:`~dance.data.formats.auto`): picks one of the four below by what ``source`` is;
- ``csv`` / ``pose`` (:mod:`~dance.data.formats.annotations`): an annotations csv (``path,label,split``), or
  the generic pose format's (``video_id,label,split`` with ``poses/<video_id>.npz``);
- ``folders`` (:mod:`~dance.data.formats.folders`): class folders ``<split>/<label>/<video>``, or
  ``<label>/<video>`` with one list file of paths per split;
- ``split_csv`` / ``mmaction2`` (:mod:`~dance.data.formats.lists`): one list file per split (``path,label``
  csv, or ``path label_index`` lines with a class list file);
- the datasets of the paper in their official layout and split (``kth``, ``ucf101``, ``haa500``,
  ``penn_action``), registered by :mod:`dance.data.datasets`.

``merge_val=True`` moves every ``val`` video into ``train`` after reading (any format). Every problem found in
the input is reported at once, naming file and line (:mod:`dance.data.validation`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dance.data.index import DEFAULT_SPLITS, VideoIndex, merge_val_into_train
from dance.errors import IndexFormatError
from dance.registry import Registry, unknown_name

__all__ = ["DATASETS", "FORMATS", "IndexReader", "IndexRequest", "load_index"]


@dataclass(frozen=True)
class IndexRequest:
    """The options of :func:`load_index` as a reader gets them (see there); split names are lower case."""

    fmt: str
    classes: Sequence[str] | Path | str | None = None
    splits: dict[str, Path] | dict[str, str] | None = None
    required_splits: tuple[str, ...] = ("train", "test")
    check_files: bool = True
    id_column: str | None = None
    allowed_splits: tuple[str, ...] | None = DEFAULT_SPLITS
    split_id: int = 1


#: A format reader: the index of ``source`` (a file or the dataset root) read as the request asks.
IndexReader = Callable[[Path, IndexRequest], VideoIndex]

#: ``data.format`` name → reader. The generic readers live in this package, the dataset formats in
#: :mod:`dance.data.datasets`; both are imported on the first look-up.
FORMATS: Registry[IndexReader] = Registry(
    "dataset format",
    builtins=(
        "dance.data.formats.auto",
        "dance.data.formats.annotations",
        "dance.data.formats.folders",
        "dance.data.formats.lists",
        "dance.data.datasets",
    ),
)

#: The dataset formats among them (the paper's datasets in their official layout and split): dataset name →
#: adapter ``(root, DatasetOptions) -> VideoIndex``, registered with
#: :func:`~dance.data.datasets.common.dataset_format`, which also makes each a format of :data:`FORMATS`. Kept
#: here, beside :data:`FORMATS`, so that the generic readers can name the datasets without importing them.
DATASETS: Registry[Callable[[Path, Any], VideoIndex]] = Registry("dataset", builtins=("dance.data.datasets",))


def load_index(
    source: str | Path,
    *,
    fmt: str = "auto",
    classes: Sequence[str] | Path | str | None = None,
    splits: dict[str, Path] | dict[str, str] | None = None,
    required_splits: Sequence[str] = ("train", "test"),
    check_files: bool = True,
    id_column: str | None = None,
    allowed_splits: Sequence[str] | None = DEFAULT_SPLITS,
    split_id: int = 1,
    merge_val: bool = False,
) -> VideoIndex:
    """Read a video index in format ``fmt`` (a name of :data:`FORMATS`; see the module docstring).

    Args:
        source: an annotations csv file, or the dataset root directory.
        fmt: the format; ``"auto"`` picks one of the generic formats by what ``source`` is.
        classes: the class list: names, or a file with one name per line (a ``str`` is a file path). When
            given, it fixes the class order and every label must be in it; required for mmaction2. For a dataset
            format it keeps only these classes (e.g. HAA-100), in this order.
        splits: split name → list file (folders, split_csv, mmaction2); relative file paths are tried as given,
            then relative to ``source``. Paths inside the files are relative to ``source``.
        required_splits: splits that must have at least one video.
        check_files: require every video (pose) file to exist.
        id_column: csv column to take the video ids from instead of deriving them from the paths.
        allowed_splits: the accepted split names (lower-cased before comparison); ``None`` accepts any name.
        split_id: the official split of a dataset format (UCF-101: 1, 2 or 3); must be 1 for other formats.
        merge_val: move the ``val`` videos into ``train`` (train on train + val).

    Raises:
        IndexFormatError: an unknown format, or every problem found (file and line each), up to
            :data:`~dance.data.validation.MAX_REPORTED_PROBLEMS` shown.
    """
    if fmt not in FORMATS:
        raise IndexFormatError(unknown_name("index format", fmt, FORMATS.names()))
    request = IndexRequest(
        fmt=fmt,
        classes=classes,
        splits=splits,
        required_splits=tuple(s.strip().lower() for s in required_splits),
        check_files=check_files,
        id_column=id_column,
        allowed_splits=None if allowed_splits is None else tuple(s.strip().lower() for s in allowed_splits),
        split_id=split_id,
    )
    index = FORMATS.get(fmt)(Path(source), request)
    return merge_val_into_train(index) if merge_val else index
