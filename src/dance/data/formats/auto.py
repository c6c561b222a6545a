"""``data.format=auto``: the generic format picked by what ``source`` is.

- a file → an annotations csv (``csv``, or ``pose`` by its header);
- a directory holding ``annotations.csv``, with no ``splits`` → that csv;
- a directory with ``splits`` → by the first non-blank line of a list file: a comma → ``split_csv``, a single
  path → ``folders`` with path lists, otherwise ``mmaction2``;
- any other directory → ``folders``.
"""

from __future__ import annotations

from pathlib import Path

from dance.data.formats import FORMATS, IndexRequest
from dance.data.formats.annotations import read_annotations
from dance.data.formats.common import ANNOTATIONS_NAME, open_source, text_lines
from dance.data.formats.folders import read_class_folders, read_path_lists
from dance.data.formats.lists import read_mmaction2_lists, read_split_csv_lists
from dance.data.index import VideoIndex

__all__ = ["read_auto"]


@FORMATS.register("auto", "picked by what data.path is: a csv, class folders or per-split lists")
def read_auto(source: Path, request: IndexRequest) -> VideoIndex:
    """The index of ``source`` in the format it looks like (see the module docstring)."""
    src = open_source(source, request)
    src.check_file_splits()
    if src.path.is_file():
        return read_annotations(src, src.path)
    if not request.splits and (src.path / ANNOTATIONS_NAME).is_file():
        return read_annotations(src, src.path / ANNOTATIONS_NAME)
    if not src.split_files:
        return read_class_folders(src)
    kind = _detect_list_kind(src.split_files)
    if kind == "split_csv":
        return read_split_csv_lists(src)
    return read_path_lists(src) if kind == "paths" else read_mmaction2_lists(src)


def _detect_list_kind(split_files: dict[str, Path]) -> str:
    """``split_csv``, ``mmaction2`` or ``paths`` from the first non-blank line of the list files."""
    for file in split_files.values():
        if not file.is_file():
            continue
        try:
            lines = text_lines(file.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError):
            continue
        if not lines:
            continue
        first = lines[0][1]
        if "," in first:
            return "split_csv"
        return "paths" if len(first.split()) == 1 else "mmaction2"
    return "split_csv"
