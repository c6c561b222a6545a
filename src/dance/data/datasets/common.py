"""What a dataset adapter is built from: the registry (:data:`DATASETS`, defined in :mod:`dance.data.formats`
beside the formats, and :func:`dataset_format`), the options
it gets (:class:`DatasetOptions`), and helpers for class subsets, case-insensitive look-ups and validation.

A dataset adapter is a function ``(root, options) -> VideoIndex``. Decorated with
``@dataset_format(name, description)`` it is registered in :data:`DATASETS` and, as ``data.format=<name>``, in
:data:`dance.data.formats.FORMATS`. It builds :class:`~dance.data.validation.Row` s and hands them to
:func:`finish`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from dance.data.formats import DATASETS, FORMATS, IndexRequest
from dance.data.formats.common import load_classes
from dance.data.index import VideoIndex
from dance.data.validation import Problems, Row, build_index, expand_user
from dance.errors import IndexFormatError

__all__ = [
    "DATASETS",
    "DatasetAdapter",
    "DatasetOptions",
    "check_root",
    "check_single_split",
    "child_ci",
    "dataset_error",
    "dataset_format",
    "finish",
    "select_classes",
    "walk_files",
]


@dataclass(frozen=True)
class DatasetOptions:
    """What :func:`dance.data.formats.load_index` passes on to a dataset adapter.

    Attributes:
        classes: keep only these classes, in this order (``None``: every class, in the dataset's order).
        class_origin: where ``classes`` came from (for messages).
        split_id: the official split to use (1-based; only UCF-101 has more than one).
        required_splits: splits that must have at least one video.
        check_files: require every listed video to exist (UCF-101 lists; scanned datasets always exist).
    """

    classes: list[str] | None = None
    class_origin: str = ""
    split_id: int = 1
    required_splits: Sequence[str] = ("train", "test")
    check_files: bool = True


#: A dataset adapter: the index of the dataset found at ``root``.
DatasetAdapter = Callable[[Path, DatasetOptions], VideoIndex]


def dataset_format(name: str, description: str) -> Callable[[DatasetAdapter], DatasetAdapter]:
    """Decorator: register a dataset adapter in :data:`DATASETS` and as format ``name`` of
    :data:`~dance.data.formats.FORMATS`."""

    def deco(adapter: DatasetAdapter) -> DatasetAdapter:
        DATASETS.add(name, adapter, description)
        FORMATS.add(name, partial(_read_dataset, name), description)
        return adapter

    return deco


def _read_dataset(name: str, source: Path, request: IndexRequest) -> VideoIndex:
    """Format ``name``: the request as :class:`DatasetOptions` for the adapter (a dataset has its own split)."""
    if request.splits:
        raise IndexFormatError(
            f"format '{name}' uses the dataset's official split: remove splits= (data.splits); "
            "use split_id (data.split_id) to pick one of several official splits"
        )
    src = expand_user(Path(source))
    problems = Problems()
    class_list, class_origin = load_classes(request.classes, src if src.is_dir() else src.parent, problems)
    problems.raise_if_any(f"{name}:{src}")
    options = DatasetOptions(
        classes=class_list,
        class_origin=class_origin,
        split_id=request.split_id,
        required_splits=request.required_splits,
        check_files=request.check_files,
    )
    return DATASETS.get(name)(src, options)


def dataset_error(dataset: str, message: str) -> IndexFormatError:
    """``IndexFormatError("<dataset>: <message>")``."""
    return IndexFormatError(f"{dataset}: {message}")


def check_root(dataset: str, root: Path, expected: str) -> Path:
    """``root`` made absolute; raises a dataset-named error when it is missing or not a directory."""
    root = Path(os.path.abspath(Path(root).expanduser()))
    if not root.exists():
        raise dataset_error(dataset, f"{root} not found; expected {expected}")
    if not root.is_dir():
        raise dataset_error(dataset, f"{root} is a file, not a folder; expected {expected}")
    return root


def check_single_split(dataset: str, split_id: int) -> None:
    """Datasets with one official split accept only ``split_id == 1``."""
    if split_id != 1:
        raise dataset_error(dataset, f"has a single official split: data.split_id must be 1, got {split_id}")


def child_ci(parent: Path, name: str, *, want_dir: bool | None = None) -> Path | None:
    """``parent/name`` matched case-insensitively (an exact match first); ``None`` when there is none.

    ``want_dir``: ``True`` only folders, ``False`` only files, ``None`` either.
    """

    def ok(p: Path) -> bool:
        return want_dir is None or (p.is_dir() if want_dir else p.is_file())

    exact = parent / name
    if exact.exists() and ok(exact):
        return exact
    if not parent.is_dir():
        return None
    lower = name.lower()
    try:
        candidates = sorted(p for p in parent.iterdir() if p.name.lower() == lower and ok(p))
    except OSError:
        return None
    return candidates[0] if candidates else None


def walk_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    """Files below ``folder`` whose extension (lower-cased) is in ``extensions``; recursive, sorted, hidden
    entries skipped."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
                found.append(Path(dirpath) / name)
    return found


def select_classes(
    dataset: str, available: Sequence[str], options: DatasetOptions, *, where: str
) -> list[str]:
    """The class list of the index: ``available`` (the dataset's order), or the requested subset.

    Requested names are matched exactly, then case-insensitively (the dataset's spelling is kept). Unknown
    names are all reported in one error, each with the closest dataset class names.
    """
    if options.classes is None:
        return list(available)
    exact = set(available)
    folded: dict[str, str] = {}
    for name in available:
        folded.setdefault(name.lower(), name)
    out: list[str] = []
    unknown: list[str] = []
    for name in options.classes:
        match = name if name in exact else folded.get(name.lower())
        if match is None:
            close = difflib.get_close_matches(name, list(available), n=3, cutoff=0.6)
            unknown.append(f"'{name}'" + (f" (did you mean {', '.join(close)}?)" if close else ""))
        elif match not in out:
            out.append(match)
    if unknown:
        origin = options.class_origin or "the class list"
        raise dataset_error(
            dataset,
            f"{len(unknown)} class(es) of {origin} not in the dataset ({where}): " + "; ".join(unknown),
        )
    return out


def finish(
    dataset: str,
    rows: Iterable[Row],
    *,
    root: Path,
    classes: list[str],
    class_origin: str,
    options: DatasetOptions,
    problems: Problems,
    source: str,
    check_files: bool | None = None,
    expected: str = "",
) -> VideoIndex:
    """Validate rows into a :class:`VideoIndex` with the generic checks (paths inside the root, duplicates,
    labels in the class list, required splits, classes without train videos); a class of ``classes`` with no
    video at all is reported too (``expected``: where its videos should be). All problems are raised together."""
    rows = list(rows)
    present = {r.label for r in rows}
    missing = [c for c in classes if c not in present]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        hint = f"; expected {expected}" if expected else ""
        problems.add(root, None, f"no {dataset} videos of class(es) {shown} (an incomplete download?){hint}")
    return build_index(
        rows,
        root=root,
        class_list=classes,
        class_origin=class_origin,
        required_splits=tuple(options.required_splits),
        allowed_splits=None,
        check_files=options.check_files if check_files is None else check_files,
        split_where={},
        default_where=str(root),
        source=source,
        problems=problems,
    )
