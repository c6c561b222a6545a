"""Per-split list files: ``data.format=split_csv`` and ``data.format=mmaction2``.

Both read ``splits={"train": f, "val": f, "test": f}`` with ``source`` the dataset root directory; paths in
the files are relative to it.

- ``split_csv``: each file a headerless ``path,label`` csv. A first row that reads exactly ``path,label`` is
  taken as a header and skipped.
- ``mmaction2``: lines ``path label_index`` (space-separated, 0-based index into ``classes``, the class list
  file with one name per line, which this format needs).
"""

from __future__ import annotations

from pathlib import Path

from dance.data.formats import FORMATS, IndexRequest
from dance.data.formats.common import Source, csv_rows, open_source, read_split_lists, text_lines
from dance.data.index import VideoIndex
from dance.data.validation import Row
from dance.errors import IndexFormatError

__all__ = ["read_mmaction2_lists", "read_split_csv_lists"]


def _open_lists(source: Path, request: IndexRequest) -> Source:
    src = open_source(source, request)
    src.needs_directory()
    if not src.split_files:
        raise IndexFormatError(
            f"{src.path}: format '{src.fmt}' needs splits={{'train': <list file>, 'test': <list file>, ...}}"
        )
    return src


@FORMATS.register("split_csv", "one headerless path,label csv per split (data.splits)")
def read_split_csv(source: Path, request: IndexRequest) -> VideoIndex:
    """The ``split_csv`` format (see the module docstring)."""
    return read_split_csv_lists(_open_lists(source, request))


@FORMATS.register("mmaction2", "mmaction2 lists 'path label_index' per split (data.splits) with a class list file")
def read_mmaction2(source: Path, request: IndexRequest) -> VideoIndex:
    """The ``mmaction2`` format (see the module docstring)."""
    return read_mmaction2_lists(_open_lists(source, request))


def read_split_csv_lists(src: Source) -> VideoIndex:
    """The index of ``path,label`` list files."""
    problems = src.problems

    def parse(file: Path, text: str, split: str) -> list[Row]:
        out: list[Row] = []
        rows = csv_rows(file, text, problems)
        if rows and [c.strip().lower() for c in rows[0][1]] == ["path", "label"]:
            rows = rows[1:]
        for line, row in rows:
            if len(row) != 2:
                problems.add(file, line, f"wrong number of columns: expected 2 ('path,label'), got {len(row)}")
                continue
            out.append(Row(file, line, row[0], row[1], split))
        return out

    return read_split_lists(src, "split-csv", parse)


def read_mmaction2_lists(src: Source) -> VideoIndex:
    """The index of ``path label_index`` list files (the class list is required)."""
    class_list, problems = src.class_list, src.problems
    if class_list is None:
        raise IndexFormatError(
            f"{src.path}: mmaction2 lists ('path label_index') need the class list file: pass classes=<file>"
        )

    def parse(file: Path, text: str, split: str) -> list[Row]:
        out: list[Row] = []
        for line, content in text_lines(text):
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
            out.append(Row(file, line, raw_path, class_list[idx], split))
        return out

    return read_split_lists(src, "mmaction2", parse, with_classes=True)
