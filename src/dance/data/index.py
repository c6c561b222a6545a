"""Video index: the list of ``(video, label, split)`` a run works on.

:func:`load_index` reads one of five kinds of on-disk layout and returns a :class:`VideoIndex`:

1. **Annotations csv** (``fmt="csv"``): a csv file with a header containing ``path,label,split``; paths are
   relative to the csv's folder (absolute paths inside that folder are accepted too); extra columns are
   ignored. A csv whose header has ``video_id,label,split`` and no ``path`` column is the generic *pose*
   format (``fmt="pose"``): the file of each row is ``poses/<video_id>.npz`` next to the csv.
   A directory that contains ``annotations.csv`` (and no ``splits`` are given) is read the same way.
2. **Class folders** (``fmt="folders"``): ``root/<split>/<label>/<video>`` when ``root`` has a ``train`` or
   ``test`` subfolder, otherwise ``root/<label>/<video>`` with the splits given as ``splits`` list files
   holding one root-relative video path per line (the label is the class folder the path starts with).
   Videos are the files with an extension in :data:`VIDEO_EXTENSIONS` (case-insensitive); hidden files and
   folders are skipped; videos may sit in sub-folders of a class folder.
3. **Per-split csv lists** (``fmt="split_csv"``): ``splits={"train": f, "val": f, "test": f}``, each a
   headerless ``path,label`` csv with paths relative to ``source`` (the dataset root directory). A first
   row that reads exactly ``path,label`` is taken as a header and skipped.
4. **mmaction2 lists** (``fmt="mmaction2"``): ``splits`` maps split names to list files whose lines are
   ``path label_index`` (space-separated, 0-based index) and ``classes`` is the class list file
   (one name per line).
5. **Dataset layouts** (``fmt`` in :data:`DATASET_FORMATS`: ``kth``, ``ucf101``, ``haa500``, ``penn_action``): a
   dataset of the paper in its official layout and split, read by :mod:`dance.data.datasets` (``classes`` then
   keeps a subset of the dataset's classes; ``split_id`` picks an official split).

``merge_val=True`` moves every ``val`` video into ``train`` after reading (any format).

``fmt="auto"`` picks by what ``source`` is: a file → (1); a directory with ``splits`` → (3) when the first
line of a list file contains a comma, (2) when it holds a single path, (4) otherwise; a directory with
``annotations.csv`` → (1); any other directory → (2).

Every problem found in the input is collected (the message names the file and the 1-based line number, or
the offending path for class folders) and all of them are raised together as one
:class:`~dance.errors.IndexFormatError`, listing the first :data:`MAX_REPORTED_PROBLEMS`.

Video ids: the path relative to the dataset root, in posix form, without its last extension, with ``/``
replaced by ``__`` (``train/jump/v01.mp4`` → ``train__jump__v01``). They are stable as long as the files
keep their place under the root. For the pose format the id is the ``video_id`` column as written; with
``id_column`` the id is taken from that column instead of being derived.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import posixpath
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dance.errors import IndexFormatError

__all__ = [
    "DEFAULT_SPLITS",
    "DATASET_FORMATS",
    "FORMATS",
    "MAX_REPORTED_PROBLEMS",
    "VIDEO_EXTENSIONS",
    "VideoIndex",
    "VideoRecord",
    "load_index",
    "make_val_split",
    "merge_val_into_train",
]

#: File extensions (lower case) recognised as videos when scanning class folders.
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".mpg", ".mpeg", ".m4v")
#: Split names accepted by default (``allowed_splits``); pass ``allowed_splits=None`` to allow any name.
DEFAULT_SPLITS: tuple[str, ...] = ("train", "val", "test")
#: Dataset formats, read by the adapters of :mod:`dance.data.datasets` (the keys of its ``DATASETS``).
DATASET_FORMATS: tuple[str, ...] = ("kth", "ucf101", "haa500", "penn_action")
#: Values accepted for ``fmt``.
FORMATS: tuple[str, ...] = ("auto", "csv", "pose", "folders", "split_csv", "mmaction2", *DATASET_FORMATS)
#: How many problems an :class:`IndexFormatError` lists before summarising the rest.
MAX_REPORTED_PROBLEMS = 20

_INDEX_CSV_MAGIC = "# dance-index: v1"
_ANNOTATIONS_NAME = "annotations.csv"
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
        can be moved and reloaded with ``from_csv(path, root=new_root)``; a record outside the root is
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

    @classmethod
    def from_csv(
        cls, path: str | Path, *, root: str | Path | None = None, check_files: bool = False
    ) -> VideoIndex:
        """Read an index written by :meth:`to_csv`.

        Args:
            path: the csv file.
            root: dataset root to resolve the relative paths against; defaults to the ``# root:`` line, or the
                csv's folder when there is none.
            check_files: also require every file to exist (off by default: a saved index stays readable
                when the videos are not on this machine).

        The class order is the ``# classes:`` line when present (else sorted labels). Malformed rows raise
        :class:`IndexFormatError` naming the file and line, like :func:`load_index`.
        """
        file = Path(path)
        text = _read_text(file)
        meta: dict[str, str] = {}
        lines = text.splitlines(keepends=True)
        for i, line in enumerate(lines):
            if not line.startswith("#"):
                break
            key, _, value = line[1:].partition(":")
            meta[key.strip()] = value.strip()
            lines[i] = "\n"  # keep line numbers: csv reading skips blank lines
        if root is not None:
            base = _expanduser(Path(root))
        elif meta.get("root"):
            base = Path(meta["root"])
        else:
            base = file.parent
        class_list: list[str] | None = None
        problems = _Problems()
        if "classes" in meta:
            try:
                loaded = json.loads(meta["classes"])
                if not isinstance(loaded, list) or not all(isinstance(c, str) for c in loaded):
                    raise ValueError
                class_list = loaded
            except ValueError:
                line_no = 1 + next(i for i, ln in enumerate(text.splitlines()) if ln.startswith("# classes"))
                problems.add(file, line_no, "the '# classes:' line is not a json list of names")
                problems.raise_if_any(str(file))
        rows, kind = _parse_annotations_csv(file, "".join(lines), "video_id", problems)
        source = meta.get("source") or f"index-csv:{file}"
        return _finalize(
            rows,
            root=base,
            class_list=class_list,
            class_origin=f"the '# classes:' line of {file}",
            required_splits=(),
            allowed_splits=None,
            check_files=check_files,
            split_where={},
            default_where=str(file),
            source=source,
            problems=problems,
        )


# --- problems


class _Problems:
    """Collects problems so that one error lists all of them."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, file: str | Path | None, line: int | None, message: str) -> None:
        self.items.append(f"{_where(file, line)}: {message}" if file is not None else message)

    def raise_if_any(self, source: str) -> None:
        if not self.items:
            return
        n = len(self.items)
        shown = self.items[:MAX_REPORTED_PROBLEMS]
        text = f"{n} problem{'s' if n != 1 else ''} in video index {source}:\n  " + "\n  ".join(shown)
        if n > len(shown):
            text += f"\n  ... and {n - len(shown)} more"
        raise IndexFormatError(text)


def _where(file: str | Path | None, line: int | None) -> str:
    if file is None:
        return "?"
    return f"{file}:{line}" if line is not None else str(file)


class _RowError(Exception):
    """Internal: a row's path cannot be used (message only, location added by the caller)."""


@dataclass
class _Row:
    """A parsed but not yet validated row."""

    file: Path  # the list file (or, for class folders, the video itself)
    line: int | None
    path: str  # as written: relative to the root, or absolute
    label: str | None  # None: the class folder the path starts with
    split: str
    video_id: str | None = None  # explicit id (pose csv / id_column)
    pose: bool = False


# --- reading


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IndexFormatError(f"{file}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise IndexFormatError(f"{file}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:  # a NUL byte in the file name
        raise IndexFormatError(f"{file!r}: not a usable file name ({exc})") from None


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _expanduser(path: Path) -> Path:
    """``path`` with a leading ``~`` / ``~user`` expanded; an unknown user is an :class:`IndexFormatError`."""
    try:
        return path.expanduser()
    except RuntimeError as exc:  # "Could not determine home directory."
        raise IndexFormatError(f"path '{path}': cannot expand '~' ({exc})") from None


def _control_char(text: str | None) -> str | None:
    """A description of the first NUL / control character (tab excepted) in ``text``, or ``None``."""
    m = _CONTROL.search(text) if text else None
    if m is None:
        return None
    return "a NUL byte (\\x00)" if m.group() == "\x00" else f"a control character ({m.group()!r})"


def _csv_rows(file: Path, text: str, problems: _Problems) -> list[tuple[int, list[str]]]:
    """Non-blank csv rows with their 1-based line numbers."""
    out: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text))
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.add(file, reader.line_num, f"malformed csv: {exc}")
            break
        line = start  # a quoted field may span lines: report the line the row starts on
        start = reader.line_num + 1
        if not row or all(not c.strip() for c in row):
            continue
        out.append((line, row))
    return out


def _text_lines(text: str) -> list[tuple[int, str]]:
    """Non-blank stripped lines with their 1-based line numbers."""
    return [(i, ln.strip()) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]


def _looks_like_video(cell: str) -> bool:
    return posixpath.splitext(cell.strip().lower())[1] in VIDEO_EXTENSIONS


def _parse_annotations_csv(
    file: Path, text: str, id_column: str | None, problems: _Problems
) -> tuple[list[_Row], str]:
    """Format 1: csv with a header (``path,label,split`` or pose ``video_id,label,split``)."""
    rows = _csv_rows(file, text, problems)
    if not rows:
        if not problems.items:
            problems.add(file, 1, "empty file (expected a header line 'path,label,split')")
        return [], "csv"
    header_line, header = rows[0]
    names = [h.strip().lower() for h in header]
    has_path, has_vid = "path" in names, "video_id" in names
    missing = []
    if not has_path and not has_vid:
        missing.append("path (or video_id)")
    missing += [c for c in ("label", "split") if c not in names]
    id_col = id_column.strip().lower() if id_column else None
    if id_col and id_col not in names:
        missing.append(f"{id_column} (id_column)")
    if missing:
        msg = (
            f"csv header is missing required column(s): {', '.join(missing)} (header is '{','.join(header)}')"
        )
        if any(_looks_like_video(c) for c in header):
            msg += (
                "; the first line looks like data: a headerless 'path,label' file is a per-split list, "
                "pass splits={'train': ..., 'test': ...} with the dataset root as source"
            )
        problems.add(file, header_line, msg)
        return [], "csv"
    col = {name: names.index(name) for name in ("path", "video_id", "label", "split") if name in names}
    if id_col:
        col["id"] = names.index(id_col)
    pose = not has_path
    out: list[_Row] = []
    for line, row in rows[1:]:
        if len(row) != len(header):
            problems.add(
                file,
                line,
                f"wrong number of columns: expected {len(header)} ('{','.join(header)}'), got {len(row)}",
            )
            continue
        vid: str | None = None
        if "id" in col:
            vid = row[col["id"]].strip()
            if not vid:
                problems.add(file, line, f"empty {id_column}")
                continue
        if pose:
            pose_id = row[col["video_id"]].strip()
            if not pose_id:
                problems.add(file, line, "empty video_id")
                continue
            path = f"poses/{pose_id}.npz"
            vid = vid or pose_id
        else:
            path = row[col["path"]]
        out.append(_Row(file, line, path, row[col["label"]], row[col["split"]], vid, pose))
    return out, "pose-csv" if pose else "csv"


def _parse_split_list(
    file: Path, split: str, kind: str, class_list: list[str] | None, problems: _Problems
) -> list[_Row]:
    """Formats 2 (list of paths), 3 (``path,label`` csv) and 4 (mmaction2 ``path label_index``)."""
    text = _read_text(file)
    out: list[_Row] = []
    if not text.strip():
        problems.add(file, 1, f"empty file (no videos listed for split '{split}')")
        return out
    if kind == "split_csv":
        rows = _csv_rows(file, text, problems)
        if rows and [c.strip().lower() for c in rows[0][1]] == ["path", "label"]:
            rows = rows[1:]
        for line, row in rows:
            if len(row) != 2:
                problems.add(
                    file, line, f"wrong number of columns: expected 2 ('path,label'), got {len(row)}"
                )
                continue
            out.append(_Row(file, line, row[0], row[1], split))
    elif kind == "mmaction2":
        assert class_list is not None
        for line, content in _text_lines(text):
            tokens = content.split()
            if len(tokens) != 2:
                problems.add(
                    file,
                    line,
                    "wrong number of columns: expected 2 space-separated ('path label_index'), "
                    f"got {len(tokens)}",
                )
                continue
            raw_path, raw_idx = tokens
            try:
                idx = int(raw_idx)
            except ValueError:
                problems.add(file, line, f"label index '{raw_idx}' is not an integer")
                continue
            if not 0 <= idx < len(class_list):
                problems.add(
                    file,
                    line,
                    f"unknown label: index {idx} is out of range, the class list has {len(class_list)} "
                    f"classes (0..{len(class_list) - 1})",
                )
                continue
            out.append(_Row(file, line, raw_path, class_list[idx], split))
    else:  # "paths": one root-relative path per line, the label is the class folder
        for line, content in _text_lines(text):
            out.append(_Row(file, line, content, None, split))
    return out


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _walk_videos(folder: Path) -> list[Path]:
    """Video files below ``folder`` (recursive, sorted, hidden entries and symlinked folders skipped)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for name in sorted(filenames):
            if not _is_hidden(name) and _looks_like_video(name):
                found.append(Path(dirpath) / name)
    return found


def _has_split_folders(root: Path) -> bool:
    return any(
        (root / name).is_dir() or (root / name.capitalize()).is_dir() or (root / name.upper()).is_dir()
        for name in ("train", "test")
    )


def _scan_class_folders(
    root: Path, allowed_splits: Sequence[str] | None, problems: _Problems
) -> tuple[list[_Row], dict[str, str]]:
    """Format 2 with split folders: ``root/<split>/<label>/<video>``."""
    rows: list[_Row] = []
    where: dict[str, str] = {}
    allowed = _allowed_text(allowed_splits)
    for entry in sorted(root.iterdir()):
        if _is_hidden(entry.name):
            continue
        if entry.is_file():
            if _looks_like_video(entry.name):
                problems.add(
                    entry, None, "video is not inside a split/class folder (expected <split>/<label>/<video>)"
                )
            continue
        if not entry.is_dir():
            continue
        split = entry.name.strip().lower()
        if allowed_splits is not None and split not in allowed_splits:
            problems.add(entry, None, f"unknown split folder '{entry.name}' (allowed split names: {allowed})")
            continue
        where[split] = str(entry)
        for sub in sorted(entry.iterdir()):
            if _is_hidden(sub.name):
                continue
            if sub.is_file():
                if _looks_like_video(sub.name):
                    problems.add(
                        sub,
                        None,
                        f"video is not inside a class folder (expected {entry.name}/<label>/<video>)",
                    )
                continue
            if sub.is_dir():
                for video in _walk_videos(sub):
                    rows.append(_Row(video, None, str(video), sub.name, split))
    return rows, where


def _allowed_text(allowed_splits: Sequence[str] | None) -> str:
    return ", ".join(allowed_splits) if allowed_splits is not None else "any"


# --- classes


def _load_classes(
    classes: Sequence[str] | Path | str | None, base: Path, problems: _Problems
) -> tuple[list[str] | None, str]:
    """The class list (``None`` when not given) and a description of where it came from."""
    if classes is None:
        return None, ""
    if isinstance(classes, (str, os.PathLike)):
        file = _resolve_aux_path(Path(classes), base)
        if not file.is_file():
            problems.add(file, None, "class list file not found")
            return None, str(file)
        text = _read_text(file)
        lines = text.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        if not lines:
            problems.add(file, 1, "empty file (expected one class name per line)")
            return None, str(file)
        names: list[str] = []
        seen: dict[str, int] = {}
        for i, raw in enumerate(lines, start=1):
            name = raw.strip()
            if not name:
                problems.add(file, i, "empty class name (a blank line would shift the label indices)")
                continue
            if what := _control_char(name):
                problems.add(file, i, f"class name {name!r} contains {what}")
                continue
            if name in seen:
                problems.add(file, i, f"duplicate class name '{name}' (first on line {seen[name]})")
                continue
            seen[name] = i
            names.append(name)
        return names, f"class list {file}"
    names = [str(c).strip() for c in classes]
    origin = "the given class list"
    if not names:
        problems.add("classes", None, "the given class list is empty")
    for i, name in enumerate(names):
        if not name:
            problems.add("classes", None, f"empty class name at position {i}")
        elif what := _control_char(name):
            problems.add("classes", None, f"class name {name!r} at position {i} contains {what}")
        elif name in names[:i]:
            problems.add("classes", None, f"duplicate class name '{name}' at position {i}")
    return names, origin


def _resolve_aux_path(path: Path, base: Path) -> Path:
    """A split/class file given relative: as given when it exists, else relative to the dataset root."""
    path = _expanduser(path)
    if path.is_absolute() or path.exists():
        return path
    candidate = base / path
    return candidate if candidate.exists() else path


# --- validation


def _locate(raw: str, root_abs: Path, root_res: Path) -> tuple[str, Path, Path]:
    """Root-relative posix path, stored absolute path and symlink-resolved path of ``raw``.

    Raises :class:`_RowError` when the path is empty or escapes the root (``..``, absolute paths elsewhere,
    symlinks that resolve outside it).
    """
    text = raw.strip()
    if not text:
        raise _RowError("empty path")
    try:
        p = _expanduser(Path(text)) if text.startswith("~") else Path(text)
    except IndexFormatError as exc:
        raise _RowError(str(exc)) from None
    if p.is_absolute():
        norm = Path(os.path.normpath(p))
        for base in (root_abs, root_res):
            try:
                rel = norm.relative_to(base).as_posix()
                break
            except ValueError:
                continue
        else:
            raise _RowError(f"absolute path '{text}' is outside the dataset root {root_res}")
    else:
        rel = posixpath.normpath(p.as_posix())
        if rel == ".." or rel.startswith("../"):
            raise _RowError(f"path '{text}' escapes the dataset root {root_res}")
    if rel in ("", "."):
        raise _RowError(f"path '{text}' is the dataset root itself, not a file")
    stored = root_res / rel
    try:
        resolved = stored.resolve()
    except (OSError, ValueError, RuntimeError) as exc:  # symlink loops, over-long names
        raise _RowError(f"path '{text}' cannot be resolved: {exc}") from None
    if not resolved.is_relative_to(root_res):
        raise _RowError(
            f"path '{text}' resolves to {resolved}, outside the dataset root {root_res} (symlink?)"
        )
    return rel, stored, resolved


def _file_kind(path: Path) -> str:
    """``"file"``, ``"directory"``, ``"missing"``, or why the path cannot be looked at (a name too long ...)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "missing"
    except NotADirectoryError:
        return "missing"
    except (OSError, ValueError) as exc:
        return str(getattr(exc, "strerror", None) or exc)
    if stat.S_ISDIR(st.st_mode):
        return "directory"
    return "file" if stat.S_ISREG(st.st_mode) else "missing"


def _derive_id(rel: str) -> str:
    stem = posixpath.splitext(rel)[0] if posixpath.splitext(rel)[1] else rel
    return stem.replace("/", "__")


def _finalize(
    rows: Iterable[_Row],
    *,
    root: Path,
    class_list: list[str] | None,
    class_origin: str,
    required_splits: Sequence[str],
    allowed_splits: Sequence[str] | None,
    check_files: bool,
    split_where: dict[str, str],
    default_where: str,
    source: str,
    problems: _Problems,
) -> VideoIndex:
    """Validate parsed rows (paths, labels, splits, duplicates, split/class coverage) into an index."""
    try:
        root_abs = Path(os.path.abspath(root))
        root_res = root_abs.resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise IndexFormatError(f"{source}: the dataset root {str(root)!r} is not a usable path ({exc})") from None
    class_set = set(class_list) if class_list is not None else None
    allowed = _allowed_text(allowed_splits)
    records: list[VideoRecord] = []
    first_loc: list[tuple[Path, int | None]] = []
    seen_path: dict[Path, str] = {}
    seen_id: dict[str, str] = {}
    rows_per_split: dict[str, int] = {}

    for row in rows:
        loc = (row.file, row.line)
        bad = [f"{name} contains {what}" for name, value in (("path", row.path), ("label", row.label),
                                                            ("split", row.split), ("video id", row.video_id))
               if (what := _control_char(value))]
        if bad:  # a NUL byte cannot be a file name; control characters are never meant
            problems.add(*loc, f"{'; '.join(bad)}: {row.path!r}")
            continue
        ok = True
        split = row.split.strip().lower()
        if not split:
            problems.add(*loc, "empty split")
            ok = False
        elif allowed_splits is not None and split not in allowed_splits:
            problems.add(*loc, f"unknown split '{row.split.strip()}' (allowed split names: {allowed})")
            ok = False
        else:
            rows_per_split[split] = rows_per_split.get(split, 0) + 1
        try:
            rel, stored, resolved = _locate(row.path, root_abs, root_res)
        except _RowError as exc:
            problems.add(*loc, str(exc))
            ok, rel, stored, resolved = False, "", root_res, root_res
        if ok and row.pose and not rel.startswith("poses/"):
            problems.add(*loc, f"video_id '{row.path[6:-4]}' is not a plain name (it leaves poses/)")
            ok = False
        label = row.label.strip() if row.label is not None else None
        if label is None and rel:
            label = rel.split("/")[0] if "/" in rel else None
            if label is None:
                problems.add(
                    *loc, f"'{row.path.strip()}' is not inside a class folder (expected <label>/<video>)"
                )
                ok = False
        if label is not None:
            if not label:
                problems.add(*loc, "empty label")
                ok = False
            elif class_set is not None and label not in class_set:
                problems.add(*loc, f"unknown label '{label}' (not in {class_origin})")
                ok = False
        what = _file_kind(resolved) if rel and check_files else "file"
        if what != "file":
            kind = "pose file" if row.pose else "video file"
            if what == "directory":
                problems.add(*loc, f"'{row.path.strip()}' is a directory, not a {kind}")
            elif what == "missing":
                problems.add(*loc, f"missing {kind} '{row.path.strip()}' (looked for {stored})")
            else:
                problems.add(*loc, f"cannot look for {kind} '{row.path.strip()}': {what}")
            ok = False
        if rel:
            if resolved in seen_path:
                problems.add(*loc, f"duplicate path '{row.path.strip()}' (first at {seen_path[resolved]})")
                ok = False
            else:
                seen_path[resolved] = _where(*loc)
                vid = row.video_id if row.video_id is not None else _derive_id(rel)
                if vid in seen_id:
                    problems.add(*loc, f"duplicate video id '{vid}' (first at {seen_id[vid]})")
                    ok = False
                else:
                    seen_id[vid] = _where(*loc)
        if ok:
            assert label is not None
            vid = row.video_id if row.video_id is not None else _derive_id(rel)
            records.append(VideoRecord(video_id=vid, path=stored, label=label, split=split))
            first_loc.append(loc)

    for name in required_splits:
        if rows_per_split.get(name, 0) == 0:
            problems.add(split_where.get(name, default_where), None, f"split '{name}' has no videos")

    train_labels = {r.label for r in records if r.split == "train"}
    if train_labels:
        reported: set[tuple[str, str]] = set()
        for rec, loc in zip(records, first_loc, strict=True):
            key = (rec.split, rec.label)
            if rec.split != "train" and rec.label not in train_labels and key not in reported:
                reported.add(key)
                n = sum(1 for r in records if r.split == rec.split and r.label == rec.label)
                problems.add(
                    *loc,
                    f"class '{rec.label}' has {n} video(s) in split '{rec.split}' but none in 'train': "
                    "the model could never predict it",
                )

    problems.raise_if_any(source)
    classes = list(class_list) if class_list is not None else sorted({r.label for r in records})
    return VideoIndex(root=root_res, records=records, classes=classes, source=source)


# --- loading


def _detect_list_kind(split_files: dict[str, Path]) -> str:
    """``split_csv``, ``mmaction2`` or ``paths`` from the first non-blank line of the list files."""
    for file in split_files.values():
        if not file.is_file():
            continue
        try:
            lines = _text_lines(file.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError):
            continue
        if not lines:
            continue
        first = lines[0][1]
        if "," in first:
            return "split_csv"
        return "paths" if len(first.split()) == 1 else "mmaction2"
    return "split_csv"


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
    """Read a video index (see the module docstring for the formats).

    Args:
        source: an annotations csv file, or the dataset root directory.
        fmt: ``"auto"``, ``"csv"``, ``"pose"``, ``"folders"``, ``"split_csv"``, ``"mmaction2"``, or a dataset
            format of :data:`DATASET_FORMATS` (``"kth"``, ``"ucf101"``, ``"haa500"``, ``"penn_action"``).
        classes: the class list: names, or a file with one name per line (a ``str`` is a file path). When
            given, it fixes the class order and every label must be in it; required for mmaction2. For a dataset
            format it keeps only these classes (e.g. HAA-100), in this order.
        splits: split name → list file (formats 2-4); relative file paths are tried as given, then relative
            to ``source``. Paths inside the files are relative to ``source``.
        required_splits: splits that must have at least one video.
        check_files: require every video (pose) file to exist.
        id_column: csv column to take the video ids from instead of deriving them from the paths.
        allowed_splits: the accepted split names (lower-cased before comparison); ``None`` accepts any name.
        split_id: the official split of a dataset format (UCF-101: 1, 2 or 3); must be 1 for other formats.
        merge_val: move the ``val`` videos into ``train`` (train on train + val).

    Raises:
        IndexFormatError: listing every problem found (file and line each), up to
            :data:`MAX_REPORTED_PROBLEMS` shown.
    """
    if fmt not in FORMATS:
        raise IndexFormatError(f"unknown index format '{fmt}' (expected one of: {', '.join(FORMATS)})")
    if fmt in DATASET_FORMATS:
        index = _load_dataset(source, fmt, classes, splits, required_splits, check_files, split_id)
    else:
        if split_id != 1:
            raise IndexFormatError(
                f"split_id={split_id}: only the dataset formats ({', '.join(DATASET_FORMATS)}) have numbered "
                f"official splits, format '{fmt}' takes its splits from the index itself"
            )
        index = _load_generic(
            source,
            fmt=fmt,
            classes=classes,
            splits=splits,
            required_splits=required_splits,
            check_files=check_files,
            id_column=id_column,
            allowed_splits=allowed_splits,
        )
    return merge_val_into_train(index) if merge_val else index


def _load_dataset(
    source: str | Path,
    fmt: str,
    classes: Sequence[str] | Path | str | None,
    splits: dict[str, Path] | dict[str, str] | None,
    required_splits: Sequence[str],
    check_files: bool,
    split_id: int,
) -> VideoIndex:
    """A dataset format: the adapter of :mod:`dance.data.datasets`."""
    from dance.data.datasets import DatasetOptions, load_dataset

    if splits:
        raise IndexFormatError(
            f"format '{fmt}' uses the dataset's official split: remove splits= (data.splits); "
            "use split_id (data.split_id) to pick one of several official splits"
        )
    src = _expanduser(Path(source))
    problems = _Problems()
    class_list, class_origin = _load_classes(classes, src if src.is_dir() else src.parent, problems)
    problems.raise_if_any(f"{fmt}:{src}")
    options = DatasetOptions(
        classes=class_list,
        class_origin=class_origin,
        split_id=split_id,
        required_splits=tuple(s.strip().lower() for s in required_splits),
        check_files=check_files,
    )
    return load_dataset(fmt, src, options)


def _load_generic(
    source: str | Path,
    *,
    fmt: str,
    classes: Sequence[str] | Path | str | None,
    splits: dict[str, Path] | dict[str, str] | None,
    required_splits: Sequence[str],
    check_files: bool,
    id_column: str | None,
    allowed_splits: Sequence[str] | None,
) -> VideoIndex:
    """Formats 1-4 (see :func:`load_index`)."""
    src = _expanduser(Path(source))
    if not src.exists():
        raise IndexFormatError(f"{src}: index source not found")
    if allowed_splits is not None:
        allowed_splits = tuple(s.strip().lower() for s in allowed_splits)
    required = tuple(s.strip().lower() for s in required_splits)
    problems = _Problems()
    base = src if src.is_dir() else src.parent

    class_list, class_origin = _load_classes(classes, base, problems)
    split_files: dict[str, Path] = {}
    for name, file in (splits or {}).items():
        key = str(name).strip().lower()
        resolved_file = _resolve_aux_path(Path(file), base)
        if allowed_splits is not None and key not in allowed_splits:
            problems.add(
                resolved_file,
                None,
                f"unknown split '{name}' in splits= (allowed split names: {_allowed_text(allowed_splits)})",
            )
        elif not resolved_file.is_file():
            problems.add(resolved_file, None, f"list file for split '{key}' not found")
        else:
            split_files[key] = resolved_file
    problems.raise_if_any(str(src))

    common = dict(
        class_list=class_list,
        class_origin=class_origin,
        required_splits=required,
        allowed_splits=allowed_splits,
        check_files=check_files,
        problems=problems,
    )

    # ---- format 1: annotations csv (a file, or a directory holding annotations.csv)
    csv_file: Path | None = None
    if src.is_file():
        if splits:
            raise IndexFormatError(
                f"{src}: splits= needs source to be the dataset root directory, not a file"
            )
        if fmt in ("folders", "split_csv", "mmaction2"):
            raise IndexFormatError(f"{src}: format '{fmt}' needs source to be the dataset root directory")
        csv_file = src
    elif fmt in ("csv", "pose") or (fmt == "auto" and not splits and (src / _ANNOTATIONS_NAME).is_file()):
        csv_file = src / _ANNOTATIONS_NAME
        if not csv_file.is_file():
            raise IndexFormatError(f"{src}: no {_ANNOTATIONS_NAME} in this directory (format '{fmt}')")
    if csv_file is not None:
        rows, kind = _parse_annotations_csv(csv_file, _read_text(csv_file), id_column, problems)
        if fmt == "pose" and kind != "pose-csv" and not problems.items:
            problems.add(csv_file, 1, "format 'pose' expects a header 'video_id,label,split' without 'path'")
        return _finalize(
            rows,
            root=csv_file.parent,
            split_where={},
            default_where=str(csv_file),
            source=f"{kind}:{csv_file}",
            **common,
        )

    # ---- formats 2-4: a directory
    if fmt == "auto":
        if split_files:
            kind = _detect_list_kind(split_files)
        else:
            kind = "folders"
    elif fmt == "folders":
        kind = "paths" if split_files else "folders"
    else:
        kind = fmt
        if not split_files:
            raise IndexFormatError(
                f"{src}: format '{fmt}' needs splits={{'train': <list file>, 'test': <list file>, ...}}"
            )
    if kind == "mmaction2" and class_list is None:
        raise IndexFormatError(
            f"{src}: mmaction2 lists ('path label_index') need the class list file: pass classes=<file>"
        )
    listing = ", ".join(f"{k}={v}" for k, v in split_files.items())

    if kind == "folders":
        if _has_split_folders(src):
            rows, where = _scan_class_folders(src, allowed_splits, problems)
            if not rows and not problems.items:
                problems.add(src, None, f"no video files found (looked for {' '.join(VIDEO_EXTENSIONS)})")
                problems.raise_if_any(f"folders:{src}")
            return _finalize(
                rows, root=src, split_where=where, default_where=str(src), source=f"folders:{src}", **common
            )
        videos = _walk_videos(src)
        if not videos:
            problems.add(src, None, f"no video files found (looked for {' '.join(VIDEO_EXTENSIONS)})")
        else:
            problems.add(
                src,
                None,
                "the split is missing: this folder has no train/test subfolders (expected "
                "<split>/<label>/<video>); for <label>/<video> folders pass splits={'train': <list file>, "
                "'test': <list file>} with one video path per line",
            )
        problems.raise_if_any(f"folders:{src}")

    rows = []
    for split, file in split_files.items():
        rows += _parse_split_list(file, split, kind, class_list, problems)
    names = {"paths": "folders", "split_csv": "split-csv", "mmaction2": "mmaction2"}
    desc = (
        f"{names[kind]}:{src} ({listing}" + (f"; classes={class_origin}" if kind == "mmaction2" else "") + ")"
    )
    return _finalize(
        rows,
        root=src,
        split_where={k: str(v) for k, v in split_files.items()},
        default_where=str(src),
        source=desc,
        **common,
    )


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
