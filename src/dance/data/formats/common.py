"""What the generic format readers share: the checked source (:func:`open_source`), class list files, csv and
list-file parsing, and the last step of every per-split list format (:func:`read_split_lists`)."""

from __future__ import annotations

import csv
import io
import os
import posixpath
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dance.data.formats import DATASETS, IndexRequest
from dance.data.index import VideoIndex
from dance.data.validation import Problems, Row, allowed_text, build_index, control_char, expand_user, read_text
from dance.data.video import VIDEO_EXTENSIONS
from dance.errors import IndexFormatError

__all__ = [
    "ANNOTATIONS_NAME",
    "Source",
    "csv_rows",
    "load_classes",
    "looks_like_video",
    "open_source",
    "read_split_lists",
    "resolve_aux_path",
    "text_lines",
]

#: The annotations csv a dataset folder may hold.
ANNOTATIONS_NAME = "annotations.csv"


@dataclass
class Source:
    """A generic format's source after the checks every format makes (:func:`open_source`).

    Attributes:
        path: the source (``~`` expanded), an existing file or directory.
        class_list: the given class list (``None``: none given), ``class_origin`` where it came from.
        split_files: split name → existing list file (``splits=``).
        request: the request as :func:`~dance.data.formats.load_index` made it.
        problems: problems found so far (none yet when :func:`open_source` returns).
    """

    path: Path
    class_list: list[str] | None
    class_origin: str
    split_files: dict[str, Path]
    request: IndexRequest
    problems: Problems

    @property
    def fmt(self) -> str:
        """The requested format name."""
        return self.request.fmt

    def check_file_splits(self) -> None:
        """Raise when the source is a file and ``splits=`` was given (list files need the dataset root)."""
        if self.path.is_file() and self.request.splits:
            raise IndexFormatError(f"{self.path}: splits= needs source to be the dataset root directory, not a file")

    def needs_directory(self) -> None:
        """Raise when the source is a file (:meth:`check_file_splits` first): a directory format."""
        self.check_file_splits()
        if self.path.is_file():
            raise IndexFormatError(f"{self.path}: format '{self.fmt}' needs source to be the dataset root directory")

    def build(
        self, rows: Iterable[Row], *, root: Path, split_where: dict[str, str], default_where: str, source: str
    ) -> VideoIndex:
        """:func:`~dance.data.validation.build_index` with this source's class list and options."""
        return build_index(
            rows,
            root=root,
            class_list=self.class_list,
            class_origin=self.class_origin,
            required_splits=self.request.required_splits,
            allowed_splits=self.request.allowed_splits,
            check_files=self.request.check_files,
            split_where=split_where,
            default_where=default_where,
            source=source,
            problems=self.problems,
        )


def open_source(source: Path, request: IndexRequest) -> Source:
    """Check what every generic format needs: ``split_id`` 1, an existing source, the class list and the
    ``splits=`` list files (all their problems raised together)."""
    if request.split_id != 1:
        raise IndexFormatError(
            f"split_id={request.split_id}: only the dataset formats ({', '.join(DATASETS)}) have numbered "
            f"official splits, format '{request.fmt}' takes its splits from the index itself"
        )
    src = expand_user(Path(source))
    if not src.exists():
        raise IndexFormatError(f"{src}: index source not found")
    allowed_splits = request.allowed_splits
    problems = Problems()
    base = src if src.is_dir() else src.parent

    class_list, class_origin = load_classes(request.classes, base, problems)
    split_files: dict[str, Path] = {}
    for name, file in (request.splits or {}).items():
        key = str(name).strip().lower()
        resolved_file = resolve_aux_path(Path(file), base)
        if allowed_splits is not None and key not in allowed_splits:
            problems.add(
                resolved_file,
                None,
                f"unknown split '{name}' in splits= (allowed split names: {allowed_text(allowed_splits)})",
            )
        elif not resolved_file.is_file():
            problems.add(resolved_file, None, f"list file for split '{key}' not found")
        else:
            split_files[key] = resolved_file
    problems.raise_if_any(str(src))
    return Source(src, class_list, class_origin, split_files, request, problems)


def read_split_lists(
    source: Source, name: str, parse: Callable[[Path, str, str], list[Row]], *, with_classes: bool = False
) -> VideoIndex:
    """The index of a per-split list format: ``parse(file, text, split)`` turns each list file into rows.

    ``name`` starts the index's description; ``with_classes`` adds the class list's origin to it."""
    rows: list[Row] = []
    for split, file in source.split_files.items():
        text = read_text(file)
        if not text.strip():
            source.problems.add(file, 1, f"empty file (no videos listed for split '{split}')")
            continue
        rows += parse(file, text, split)
    listing = ", ".join(f"{k}={v}" for k, v in source.split_files.items())
    desc = f"{name}:{source.path} ({listing}" + (f"; classes={source.class_origin}" if with_classes else "") + ")"
    return source.build(
        rows,
        root=source.path,
        split_where={k: str(v) for k, v in source.split_files.items()},
        default_where=str(source.path),
        source=desc,
    )


# --- parsing


def csv_rows(file: Path, text: str, problems: Problems) -> list[tuple[int, list[str]]]:
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


def text_lines(text: str) -> list[tuple[int, str]]:
    """Non-blank stripped lines with their 1-based line numbers."""
    return [(i, ln.strip()) for i, ln in enumerate(text.splitlines(), start=1) if ln.strip()]


def looks_like_video(cell: str) -> bool:
    """Whether ``cell`` names a file with a video extension."""
    return posixpath.splitext(cell.strip().lower())[1] in VIDEO_EXTENSIONS


# --- classes


def load_classes(
    classes: Sequence[str] | Path | str | None, base: Path, problems: Problems
) -> tuple[list[str] | None, str]:
    """The class list (``None`` when not given) and a description of where it came from."""
    if classes is None:
        return None, ""
    if isinstance(classes, (str, os.PathLike)):
        file = resolve_aux_path(Path(classes), base)
        if not file.is_file():
            problems.add(file, None, "class list file not found")
            return None, str(file)
        text = read_text(file)
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
            if what := control_char(name):
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
        elif what := control_char(name):
            problems.add("classes", None, f"class name {name!r} at position {i} contains {what}")
        elif name in names[:i]:
            problems.add("classes", None, f"duplicate class name '{name}' at position {i}")
    return names, origin


def resolve_aux_path(path: Path, base: Path) -> Path:
    """A split/class file given relative: as given when it exists, else relative to the dataset root."""
    path = expand_user(path)
    if path.is_absolute() or path.exists():
        return path
    candidate = base / path
    return candidate if candidate.exists() else path
