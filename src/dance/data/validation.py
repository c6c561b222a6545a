"""Checks on an index's input, shared by every format reader and dataset adapter.

A reader turns its files into :class:`Row` s (parsed, not yet checked) and hands them to :func:`build_index`,
which validates them into a :class:`~dance.data.index.VideoIndex`: paths inside the dataset root (no ``..``,
no absolute path or symlink elsewhere), files present (``check_files``), labels in the class list, known and
non-empty splits, no duplicate paths or ids, every required split present, no class without train videos.

Every problem is collected in a :class:`Problems` (the message names the file and the 1-based line number,
or the offending path) and all of them are raised together as one :class:`~dance.errors.IndexFormatError`,
listing the first :data:`MAX_REPORTED_PROBLEMS`. :func:`read_text` and :func:`expand_user` turn unreadable
files and unusable paths into that error too; :func:`control_char` finds the characters no name may hold.

Video ids: the path relative to the dataset root, in posix form, without its last extension, with ``/``
replaced by ``__`` (``train/jump/v01.mp4`` → ``train__jump__v01``), unless the row brings its own id.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dance.data.index import VideoIndex, VideoRecord
from dance.errors import IndexFormatError

__all__ = [
    "MAX_REPORTED_PROBLEMS",
    "Problems",
    "Row",
    "allowed_text",
    "build_index",
    "control_char",
    "expand_user",
    "read_text",
    "where",
]

#: How many problems an :class:`IndexFormatError` lists before summarising the rest.
MAX_REPORTED_PROBLEMS = 20


# --- problems


class Problems:
    """Collects problems so that one error lists all of them (:meth:`raise_if_any`)."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, file: str | Path | None, line: int | None, message: str) -> None:
        """Record ``message`` at ``file:line`` (``line`` ``None``: the file or path itself; ``file`` ``None``:
        the message as it is)."""
        self.items.append(f"{where(file, line)}: {message}" if file is not None else message)

    def raise_if_any(self, source: str) -> None:
        """Raise :meth:`error` when there is a problem."""
        if self.items:
            raise self.error(source)

    def error(self, source: str) -> IndexFormatError:
        """One :class:`IndexFormatError` listing the problems of the index read from ``source``."""
        n = len(self.items)
        shown = self.items[:MAX_REPORTED_PROBLEMS]
        text = f"{n} problem{'s' if n != 1 else ''} in video index {source}:\n  " + "\n  ".join(shown)
        if n > len(shown):
            text += f"\n  ... and {n - len(shown)} more"
        return IndexFormatError(text)


def where(file: str | Path | None, line: int | None) -> str:
    """``file:line``, ``file`` or ``?``: the location part of a problem."""
    if file is None:
        return "?"
    return f"{file}:{line}" if line is not None else str(file)


class _RowError(Exception):
    """Internal: a row's path cannot be used (message only, location added by the caller)."""


@dataclass
class Row:
    """One video as a reader parsed it, not yet validated (:func:`build_index` checks it)."""

    file: Path  # the list file (or, for class folders, the video itself)
    line: int | None
    path: str  # as written: relative to the root, or absolute
    label: str | None  # None: the class folder the path starts with
    split: str
    video_id: str | None = None  # explicit id (pose csv / id_column)
    pose: bool = False


# --- reading


def read_text(file: Path) -> str:
    """The text of ``file`` (UTF-8, a BOM dropped); an unreadable file is an :class:`IndexFormatError`."""
    try:
        return file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IndexFormatError(f"{file}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise IndexFormatError(f"{file}: cannot read ({exc.strerror or exc})") from None
    except ValueError as exc:  # a NUL byte in the file name
        raise IndexFormatError(f"{file!r}: not a usable file name ({exc})") from None


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def expand_user(path: Path) -> Path:
    """``path`` with a leading ``~`` / ``~user`` expanded; an unknown user is an :class:`IndexFormatError`."""
    try:
        return path.expanduser()
    except RuntimeError as exc:  # "Could not determine home directory."
        raise IndexFormatError(f"path '{path}': cannot expand '~' ({exc})") from None


def control_char(text: str | None) -> str | None:
    """A description of the first NUL / control character (tab excepted) in ``text``, or ``None``."""
    m = _CONTROL.search(text) if text else None
    if m is None:
        return None
    return "a NUL byte (\\x00)" if m.group() == "\x00" else f"a control character ({m.group()!r})"


def allowed_text(allowed_splits: Sequence[str] | None) -> str:
    """The allowed split names for a message (``any`` when every name is allowed)."""
    return ", ".join(allowed_splits) if allowed_splits is not None else "any"


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
        p = expand_user(Path(text)) if text.startswith("~") else Path(text)
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


def build_index(
    rows: Iterable[Row],
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
    problems: Problems,
) -> VideoIndex:
    """Validate ``rows`` (paths, labels, splits, duplicates, split/class coverage) into an index, or raise every
    problem found together with those already in ``problems``.

    Args:
        rows: the parsed rows, in index order.
        root: the dataset root; row paths are relative to it (or absolute inside it).
        class_list: the class list, whose order is kept; ``None``: the sorted labels.
        class_origin: where the class list came from (for messages).
        required_splits: splits that must have at least one video.
        allowed_splits: the accepted split names (lower case); ``None`` accepts any name.
        check_files: require every file to exist.
        split_where: where a missing required split is reported (its list file); ``default_where`` otherwise.
        default_where: see ``split_where``.
        source: the index's :attr:`~dance.data.index.VideoIndex.source`, also named in the error.
        problems: problems found while parsing; raised with the others.
    """
    try:
        root_abs = Path(os.path.abspath(root))
        root_res = root_abs.resolve()
    except (OSError, ValueError, RuntimeError) as exc:
        raise IndexFormatError(f"{source}: the dataset root {str(root)!r} is not a usable path ({exc})") from None
    class_set = set(class_list) if class_list is not None else None
    allowed = allowed_text(allowed_splits)
    records: list[VideoRecord] = []
    first_loc: list[tuple[Path, int | None]] = []
    seen_path: dict[Path, str] = {}
    seen_id: dict[str, str] = {}
    rows_per_split: dict[str, int] = {}

    for row in rows:
        loc = (row.file, row.line)
        bad = [f"{name} contains {what}" for name, value in (("path", row.path), ("label", row.label),
                                                            ("split", row.split), ("video id", row.video_id))
               if (what := control_char(value))]
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
                seen_path[resolved] = where(*loc)
                vid = row.video_id if row.video_id is not None else _derive_id(rel)
                if vid in seen_id:
                    problems.add(*loc, f"duplicate video id '{vid}' (first at {seen_id[vid]})")
                    ok = False
                else:
                    seen_id[vid] = where(*loc)
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
