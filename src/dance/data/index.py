"""Video index: the list of ``(video, label, split)`` a run works on.

:class:`VideoRecord` is one video, :class:`VideoIndex` all of them with the class list; an index is saved with a
run (:meth:`VideoIndex.to_csv`) and read back (:func:`dance.data.formats.annotations.read_index_csv`, with the
checks of every reader). :func:`make_val_split` and
:func:`merge_val_into_train` derive the index a run trains on.

Reading a dataset is elsewhere: :func:`dance.data.formats.load_index` reads one of the registered on-disk
formats (:data:`dance.data.formats.FORMATS`: annotations csv, class folders, split lists, the datasets of the
paper), and :mod:`dance.data.validation` holds the checks every reader shares.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dance.errors import IndexFormatError

__all__ = [
    "DEFAULT_SPLITS",
    "VideoIndex",
    "VideoRecord",
    "make_val_split",
    "merge_val_into_train",
]

#: Split names accepted by default when reading an index; the order splits are listed in.
DEFAULT_SPLITS: tuple[str, ...] = ("train", "val", "test")

_INDEX_CSV_MAGIC = "# dance-index: v1"
_SPLIT_ORDER = {name: i for i, name in enumerate(DEFAULT_SPLITS)}


# --- records


@dataclass(frozen=True)
class VideoRecord:
    """One video (or pose file) of the index.

    Attributes:
        video_id: unique, stable id: the root-relative path without extension, ``/`` replaced by ``__``
            (or the ``video_id`` / ``id_column`` value when the source provides one).
        path: absolute path of the file (dataset root joined with the root-relative path; not
            symlink-resolved).
        label: class name.
        split: split name, lower case (``train``, ``val``, ``test``, or another name when allowed).
    """

    video_id: str
    path: Path
    label: str
    split: str


def _split_sort_key(name: str) -> tuple[int, str]:
    return (_SPLIT_ORDER.get(name, len(_SPLIT_ORDER)), name)


@dataclass
class VideoIndex:
    """The videos a run works on, with their labels and splits.

    Attributes:
        root: absolute dataset root; record paths live below it.
        records: the videos, in source order (csv/list order; sorted paths for class folders).
        classes: class names; label indices are positions in this list. Sorted names, or the order of the
            class list when one was given.
        source: human-readable description of the file(s) and format the index was read from.
    """

    root: Path
    records: list[VideoRecord]
    classes: list[str]
    source: str
    _class_to_index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.records = list(self.records)
        self.classes = list(self.classes)
        self._class_to_index = {name: i for i, name in enumerate(self.classes)}
        if len(self._class_to_index) != len(self.classes):
            raise IndexFormatError(f"{self.source}: the class list has duplicate names")
        unknown = sorted({r.label for r in self.records} - set(self._class_to_index))
        if unknown:
            raise IndexFormatError(f"{self.source}: labels not in the class list: {', '.join(unknown)}")

    def __len__(self) -> int:
        return len(self.records)

    @property
    def split_names(self) -> list[str]:
        """Split names that have at least one record (train, val, test first, then others sorted)."""
        return sorted({r.split for r in self.records}, key=_split_sort_key)

    def class_index(self, label: str) -> int:
        """Index of ``label`` in :attr:`classes` (``KeyError`` if unknown)."""
        return self._class_to_index[label]

    def split(self, name: str) -> list[VideoRecord]:
        """Records of split ``name`` in index order (an empty list when the split has no videos)."""
        return [r for r in self.records if r.split == name]

    def labels(self, split: str) -> np.ndarray:
        """Class indices (``int64``) of the records of ``split``, aligned with :meth:`split`."""
        return np.asarray([self._class_to_index[r.label] for r in self.split(split)], dtype=np.int64)

    def counts(self) -> dict[str, dict[str, int]]:
        """Videos per split and class: ``{split: {label: count}}``, every class listed (zeros included)."""
        out: dict[str, dict[str, int]] = {}
        for name in self.split_names:
            per = dict.fromkeys(self.classes, 0)
            for r in self.records:
                if r.split == name:
                    per[r.label] += 1
            out[name] = per
        return out

    def fingerprint(self) -> str:
        """sha256 hex digest over the class list and, in record order, each record's
        ``(video_id, label, split, file size, mtime_ns)``.

        Cheap (one ``stat`` per file) and changes when a video file is rewritten or touched, when a record is
        added, removed, relabelled or moved to another split, or when the class order changes. It does not
        depend on the absolute location of the dataset. Missing files hash as size/mtime ``-1``.
        """
        h = hashlib.sha256()
        h.update(json.dumps(self.classes, ensure_ascii=False).encode())
        for r in self.records:
            try:
                st = r.path.stat()
                size, mtime = st.st_size, st.st_mtime_ns
            except OSError:
                size, mtime = -1, -1
            h.update(b"\n")
            h.update(json.dumps([r.video_id, r.label, r.split, size, mtime], ensure_ascii=False).encode())
        return h.hexdigest()

    def to_csv(self, path: str | Path) -> Path:
        """Write the run's normalised copy of the index and return its path.

        Layout: a few ``#`` metadata lines (``# dance-index: v1``, ``# root: <absolute root>``,
        ``# source: ...``, ``# classes: <json list>``) followed by a csv with header
        ``video_id,path,label,split``. Paths are written relative to the root (posix form) so the dataset
        can be moved and reloaded with ``read_index_csv(path, root=new_root)``
        (:mod:`dance.data.formats.annotations`); a record outside the root is
        written with its absolute path.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        buf = io.StringIO()
        buf.write(f"{_INDEX_CSV_MAGIC}\n")
        buf.write(f"# root: {self.root}\n")
        buf.write(f"# source: {' '.join(self.source.splitlines())}\n")
        buf.write(f"# classes: {json.dumps(self.classes, ensure_ascii=False)}\n")
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["video_id", "path", "label", "split"])
        for r in self.records:
            try:
                p = r.path.relative_to(self.root).as_posix()
            except ValueError:
                p = str(r.path)
            writer.writerow([r.video_id, p, r.label, r.split])
        out.write_text(buf.getvalue(), encoding="utf-8")
        return out


# --- val split


def merge_val_into_train(index: VideoIndex) -> VideoIndex:
    """A new index whose ``val`` videos are in ``train`` (record order kept; ``index`` is not modified).

    For training on train + val; an index without ``val`` videos is returned as an unchanged copy.
    """
    if not any(r.split == "val" for r in index.records):
        return VideoIndex(index.root, list(index.records), list(index.classes), index.source)
    records = [VideoRecord(r.video_id, r.path, r.label, "train") if r.split == "val" else r for r in index.records]
    return VideoIndex(index.root, records, list(index.classes), f"{index.source} + val merged into train")


def make_val_split(index: VideoIndex, fraction: float = 0.15, seed: int = 0) -> VideoIndex:
    """Move a seeded, stratified ``fraction`` of the train videos to a new ``val`` split.

    For every class with ``n >= 2`` train videos, ``round(fraction * n)`` of them (at least 1, at most
    ``n - 1``) move to ``val``; classes with a single train video keep it in train. The choice per class
    depends only on ``seed``, the class name and that class's video ids, so it is deterministic and does not
    change when other classes are added. Record order is kept. Returns a new index (``index`` is not
    modified); an index that already has ``val`` videos is returned as an unchanged copy.

    Raises:
        IndexFormatError: ``fraction`` not in (0, 1) or no train videos.
    """
    if not 0.0 < fraction < 1.0:
        raise IndexFormatError(f"make_val_split: fraction must be in (0, 1), got {fraction}")
    if any(r.split == "val" for r in index.records):
        return VideoIndex(index.root, list(index.records), list(index.classes), index.source)
    train = [r for r in index.records if r.split == "train"]
    if not train:
        raise IndexFormatError(f"{index.source}: cannot make a val split: split 'train' has no videos")
    per_class: dict[str, list[VideoRecord]] = {}
    for r in train:
        per_class.setdefault(r.label, []).append(r)
    moved: set[str] = set()
    for label, recs in per_class.items():
        n = len(recs)
        if n < 2:
            continue
        k = min(max(int(np.floor(fraction * n + 0.5)), 1), n - 1)
        digest = hashlib.sha256(f"{seed}\0{label}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        ordered = sorted(recs, key=lambda r: r.video_id)
        for i in rng.permutation(n)[:k]:
            moved.add(ordered[int(i)].video_id)
    records = [
        VideoRecord(r.video_id, r.path, r.label, "val") if r.split == "train" and r.video_id in moved else r
        for r in index.records
    ]
    source = f"{index.source} + val split (fraction={fraction}, seed={seed})"
    return VideoIndex(index.root, records, list(index.classes), source)
