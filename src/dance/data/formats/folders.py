"""Class folders: ``data.format=folders``.

``root/<split>/<label>/<video>`` when ``root`` has a ``train`` or ``test`` subfolder, otherwise
``root/<label>/<video>`` with the splits given as ``splits`` list files holding one root-relative video path per
line (the label is the class folder the path starts with). Videos are the files with an extension in
:data:`~dance.data.video.VIDEO_EXTENSIONS` (case-insensitive); hidden files and folders are skipped; videos may
sit in sub-folders of a class folder. Records are in sorted path order (list order with list files).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dance.data.formats import FORMATS, IndexRequest
from dance.data.formats.common import Source, looks_like_video, open_source, read_split_lists, text_lines
from dance.data.index import VideoIndex
from dance.data.validation import Problems, Row, allowed_text
from dance.data.video import VIDEO_EXTENSIONS

__all__ = ["read_class_folders", "read_path_lists"]


@FORMATS.register("folders", "class folders <split>/<label>/<video>, or <label>/<video> with a path list per split")
def read_folders(source: Path, request: IndexRequest) -> VideoIndex:
    """The ``folders`` format (see the module docstring)."""
    src = open_source(source, request)
    src.needs_directory()
    return read_path_lists(src) if src.split_files else read_class_folders(src)


def read_path_lists(src: Source) -> VideoIndex:
    """``<label>/<video>`` folders with one list file of root-relative paths per split."""

    def parse(file: Path, text: str, split: str) -> list[Row]:
        return [Row(file, line, content, None, split) for line, content in text_lines(text)]

    return read_split_lists(src, "folders", parse)


def read_class_folders(src: Source) -> VideoIndex:
    """``<split>/<label>/<video>`` folders (a folder without split folders is an error that says what to do)."""
    root, problems = src.path, src.problems
    if _has_split_folders(root):
        rows, where = _scan_class_folders(root, src.request.allowed_splits, problems)
        if not rows and not problems.items:
            problems.add(root, None, f"no video files found (looked for {' '.join(VIDEO_EXTENSIONS)})")
            problems.raise_if_any(f"folders:{root}")
        return src.build(rows, root=root, split_where=where, default_where=str(root), source=f"folders:{root}")
    if not _walk_videos(root):
        problems.add(root, None, f"no video files found (looked for {' '.join(VIDEO_EXTENSIONS)})")
    else:
        problems.add(
            root,
            None,
            "the split is missing: this folder has no train/test subfolders (expected "
            "<split>/<label>/<video>); for <label>/<video> folders pass splits={'train': <list file>, "
            "'test': <list file>} with one video path per line",
        )
    raise problems.error(f"folders:{root}")


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _walk_videos(folder: Path) -> list[Path]:
    """Video files below ``folder`` (recursive, sorted, hidden entries and symlinked folders skipped)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for name in sorted(filenames):
            if not _is_hidden(name) and looks_like_video(name):
                found.append(Path(dirpath) / name)
    return found


def _has_split_folders(root: Path) -> bool:
    return any(
        (root / name).is_dir() or (root / name.capitalize()).is_dir() or (root / name.upper()).is_dir()
        for name in ("train", "test")
    )


def _scan_class_folders(
    root: Path, allowed_splits: Sequence[str] | None, problems: Problems
) -> tuple[list[Row], dict[str, str]]:
    """The rows of ``root/<split>/<label>/<video>`` and where each split's folder is."""
    rows: list[Row] = []
    where: dict[str, str] = {}
    allowed = allowed_text(allowed_splits)
    for entry in sorted(root.iterdir()):
        if _is_hidden(entry.name):
            continue
        if entry.is_file():
            if looks_like_video(entry.name):
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
                if looks_like_video(sub.name):
                    problems.add(
                        sub,
                        None,
                        f"video is not inside a class folder (expected {entry.name}/<label>/<video>)",
                    )
                continue
            if sub.is_dir():
                for video in _walk_videos(sub):
                    rows.append(Row(video, None, str(video), sub.name, split))
    return rows, where
