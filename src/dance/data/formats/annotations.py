"""Annotations csv formats: ``data.format=csv`` and ``data.format=pose``.

``csv``: a csv file with a header containing ``path,label,split``; paths are relative to the csv's folder
(absolute paths inside that folder are accepted too); extra columns are ignored. A csv whose header has
``video_id,label,split`` and no ``path`` column is the generic *pose* format (``pose``): the file of each row is
``poses/<video_id>.npz`` next to the csv, and the id is the ``video_id`` as written. ``source`` is the csv, or a
directory holding ``annotations.csv``. With ``id_column`` the ids are taken from that column instead of being
derived from the paths (:mod:`dance.data.validation`).

:func:`read_index_csv` reads an index that :meth:`dance.data.index.VideoIndex.to_csv` saved (a run's
``index/index.csv``) with :func:`parse_annotations_csv` and the same checks.
"""

from __future__ import annotations

import json
from pathlib import Path

from dance.data.formats import FORMATS, IndexRequest
from dance.data.formats.common import ANNOTATIONS_NAME, Source, csv_rows, looks_like_video, open_source
from dance.data.index import VideoIndex
from dance.data.validation import Problems, Row, build_index, expand_user, read_text
from dance.errors import IndexFormatError

__all__ = ["parse_annotations_csv", "read_annotations", "read_index_csv"]


@FORMATS.register("csv", "an annotations csv with path,label,split (or a folder holding annotations.csv)")
def read_csv(source: Path, request: IndexRequest) -> VideoIndex:
    """The ``csv`` format (see the module docstring)."""
    return _read(source, request)


@FORMATS.register("pose", "the generic pose format: annotations.csv with video_id,label,split and poses/<id>.npz")
def read_pose(source: Path, request: IndexRequest) -> VideoIndex:
    """The ``pose`` format: like ``csv``, but the header must be ``video_id,label,split`` without ``path``."""
    return _read(source, request)


def _read(source: Path, request: IndexRequest) -> VideoIndex:
    src = open_source(source, request)
    src.check_file_splits()
    if src.path.is_file():
        return read_annotations(src, src.path)
    csv_file = src.path / ANNOTATIONS_NAME
    if not csv_file.is_file():
        raise IndexFormatError(f"{src.path}: no {ANNOTATIONS_NAME} in this directory (format '{src.fmt}')")
    return read_annotations(src, csv_file)


def read_annotations(src: Source, csv_file: Path) -> VideoIndex:
    """The index of the annotations csv ``csv_file`` (a ``pose`` request insists on the pose header)."""
    problems = src.problems
    rows, kind = parse_annotations_csv(csv_file, read_text(csv_file), src.request.id_column, problems)
    if src.fmt == "pose" and kind != "pose-csv" and not problems.items:
        problems.add(csv_file, 1, "format 'pose' expects a header 'video_id,label,split' without 'path'")
    return src.build(
        rows, root=csv_file.parent, split_where={}, default_where=str(csv_file), source=f"{kind}:{csv_file}"
    )


def parse_annotations_csv(
    file: Path, text: str, id_column: str | None, problems: Problems
) -> tuple[list[Row], str]:
    """The rows of an annotations csv (``text`` of ``file``) and its kind, ``csv`` or ``pose-csv``.

    ``id_column``: the column holding the video ids (``None``: derived from the paths, or the pose
    ``video_id``)."""
    rows = csv_rows(file, text, problems)
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
        if any(looks_like_video(c) for c in header):
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
    out: list[Row] = []
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
        out.append(Row(file, line, path, row[col["label"]], row[col["split"]], vid, pose))
    return out, "pose-csv" if pose else "csv"


def read_index_csv(path: str | Path, *, root: str | Path | None = None, check_files: bool = False) -> VideoIndex:
    """Read an index written by :meth:`~dance.data.index.VideoIndex.to_csv`.

    Args:
        path: the csv file.
        root: dataset root to resolve the relative paths against; defaults to the ``# root:`` line, or the
            csv's folder when there is none.
        check_files: also require every file to exist (off by default: a saved index stays readable
            when the videos are not on this machine).

    The class order is the ``# classes:`` line when present (else sorted labels). Malformed rows raise
    :class:`IndexFormatError` naming the file and line, like :func:`dance.data.formats.load_index`: the saved
    index is an annotations csv (with a ``video_id`` column) checked like any other.
    """
    file = Path(path)
    text = read_text(file)
    meta: dict[str, str] = {}
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if not line.startswith("#"):
            break
        key, _, value = line[1:].partition(":")
        meta[key.strip()] = value.strip()
        lines[i] = "\n"  # keep line numbers: csv reading skips blank lines
    if root is not None:
        base = expand_user(Path(root))
    elif meta.get("root"):
        base = Path(meta["root"])
    else:
        base = file.parent
    class_list: list[str] | None = None
    problems = Problems()
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
    rows, _ = parse_annotations_csv(file, "".join(lines), "video_id", problems)
    return build_index(
        rows,
        root=base,
        class_list=class_list,
        class_origin=f"the '# classes:' line of {file}",
        required_splits=(),
        allowed_splits=None,
        check_files=check_files,
        split_where={},
        default_where=str(file),
        source=meta.get("source") or f"index-csv:{file}",
        problems=problems,
    )
