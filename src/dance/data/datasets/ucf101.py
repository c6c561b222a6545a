"""UCF-101 (Soomro, Zamir, Shah, CRCV-TR-12-01, 2012), ``data.format=ucf101``.

Expected layout (``data.path`` = the dataset root)::

    root/UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi     the official rar unpacked (or root = UCF-101/)
    root/ucfTrainTestlist/classInd.txt                           the official split lists, inside the root
    root/ucfTrainTestlist/trainlist01.txt ... trainlist03.txt    or beside it (root/../ucfTrainTestlist)
    root/ucfTrainTestlist/testlist01.txt ... testlist03.txt

Videos may also sit all in one folder (``root/v_ApplyEyeMakeup_g08_c01.avi`` or ``root/UCF-101/v_...avi``); the
file name must be the listed one (in any letter case). The split lists are read as published: ``classInd.txt``
holds ``<index> <Class>`` with a 1-based index, ``trainlist0k.txt`` ``<Class>/<video> <index>`` and
``testlist0k.txt`` only ``<Class>/<video>``; CRLF line endings and a UTF-8 BOM are fine. Each listed video is
looked up case-insensitively: first at its listed path, then by its file name anywhere under the video folder
(flat layouts, and copies whose folder is spelled ``HandStandPushups`` while the list says
``HandstandPushups/v_HandStandPushups_...``).

Split: ``data.split_id`` (1, 2 or 3) picks ``trainlist0k`` / ``testlist0k``, the three official splits (test
groups g01-g07, g08-g14, g15-g21). There is no official val split: the pipeline draws one from train
(``data.val_fraction``). Classes: the names and order of ``classInd.txt``; the label of a test video is the class
its path starts with (or, for a bare file name, the class in ``v_<Class>_gXX_cYY``); a train line whose index
disagrees with its class folder is an error. Video ids are the listed file stems (``v_ApplyEyeMakeup_g08_c01``).
"""

from __future__ import annotations

import re
from pathlib import Path

from dance.data.datasets.common import (
    DatasetOptions,
    check_root,
    child_ci,
    dataset_error,
    dataset_format,
    finish,
    select_classes,
    walk_files,
)
from dance.data.index import VideoIndex
from dance.data.validation import Problems, Row, read_text
from dance.data.video import VIDEO_EXTENSIONS

__all__ = ["UCF_SPLITS", "load_ucf101"]

NAME = "UCF-101"
#: The official split numbers.
UCF_SPLITS: tuple[int, ...] = (1, 2, 3)

_LISTS = "ucfTrainTestlist"
_VIDEO_DIRS = ("UCF-101", "UCF101")
_FILE = re.compile(r"^v_(?P<cls>.+)_g\d+_c\d+$", re.IGNORECASE)
_EXPECTED_LISTS = (
    f"expected the official split lists folder '{_LISTS}' (classInd.txt, trainlist01-03.txt, testlist01-03.txt) "
    "beside or inside the root"
)
_EXPECTED_VIDEOS = (
    "expected <root>/<Class>/v_<Class>_gXX_cYY.avi folders (or <root>/UCF-101/<Class>/...), or all videos in one "
    "folder"
)


def _find_lists(root: Path, video_root: Path, first_file: str) -> Path:
    candidates = [root, video_root, root.parent]
    for base in candidates:
        found = child_ci(base, _LISTS, want_dir=True)
        if found is not None:
            return found
    others = ", ".join(str(b / _LISTS) for b in dict.fromkeys(candidates[1:]) if b != root)
    raise dataset_error(
        NAME, f"{root / _LISTS / first_file} not found; {_EXPECTED_LISTS} (also looked for {others})"
    )


def _list_file(lists: Path, name: str) -> Path:
    found = child_ci(lists, name, want_dir=False)
    if found is None:
        raise dataset_error(NAME, f"{lists / name} not found; {_EXPECTED_LISTS}")
    return found


def _read_class_index(file: Path, problems: Problems) -> list[str]:
    """``classInd.txt`` → class names ordered by their (1-based) index."""
    by_index: dict[int, tuple[str, int]] = {}
    seen: dict[str, int] = {}
    for line_no, raw in enumerate(read_text(file).splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        tokens = line.split()
        if len(tokens) != 2:
            problems.add(file, line_no, f"expected '<index> <Class>' (2 columns), got {len(tokens)}")
            continue
        try:
            idx = int(tokens[0])
        except ValueError:
            problems.add(file, line_no, f"class index '{tokens[0]}' is not an integer")
            continue
        name = tokens[1]
        if idx < 1:
            problems.add(file, line_no, f"class index {idx} is not 1-based (classInd.txt starts at 1)")
        elif idx in by_index:
            problems.add(file, line_no, f"duplicate class index {idx} (first on line {by_index[idx][1]})")
        elif name.lower() in seen:
            problems.add(file, line_no, f"duplicate class name '{name}' (first on line {seen[name.lower()]})")
        else:
            by_index[idx] = (name, line_no)
            seen[name.lower()] = line_no
    if not by_index and not problems.items:
        problems.add(file, 1, "empty file (expected '<index> <Class>' lines)")
    return [by_index[i][0] for i in sorted(by_index)]


class _Disk:
    """Case-insensitive look-up of listed videos under the video folder."""

    def __init__(self, video_root: Path):
        self.video_root = video_root
        self.by_rel: dict[str, Path] = {}
        self.by_name: dict[str, list[Path]] = {}
        for p in walk_files(video_root, VIDEO_EXTENSIONS):
            self.by_rel.setdefault(p.relative_to(video_root).as_posix().lower(), p)
            self.by_name.setdefault(p.name.lower(), []).append(p)

    def find(self, listed: str) -> tuple[Path | None, str]:
        """The file of a listed path, or ``None`` and why."""
        hit = self.by_rel.get(listed.lower())
        if hit is not None:
            return hit, ""
        same_name = self.by_name.get(listed.rsplit("/", 1)[-1].lower(), [])
        if len(same_name) == 1:
            return same_name[0], ""
        if len(same_name) > 1:
            where = ", ".join(str(p.relative_to(self.video_root)) for p in same_name[:3])
            return None, f"video '{listed}' is ambiguous: {len(same_name)} files have its name ({where})"
        return None, (
            f"video '{listed}' not found under {self.video_root} (looked case-insensitively at that path and for "
            "the file name anywhere below)"
        )


@dataset_format("ucf101", "UCF-101 with its official split lists (data.split_id 1-3)")
def load_ucf101(root: Path | str, options: DatasetOptions | None = None) -> VideoIndex:
    """Index UCF-101 with official split ``options.split_id`` (see the module docstring).

    Raises:
        IndexFormatError: missing folder or split list file (naming the file and where it was looked for),
            ``split_id`` not 1-3, none of the listed videos on disk, and (all listed together, with file and line)
            malformed list lines, unknown classes, label indices that disagree with the class folder, listed
            videos missing on disk, duplicates.
    """
    options = options or DatasetOptions()
    root = check_root(NAME, Path(root), "the UCF-101 root holding the class folders (or UCF-101/) and "
                      f"'{_LISTS}' beside or inside it")
    if options.split_id not in UCF_SPLITS:
        raise dataset_error(NAME, f"data.split_id must be 1, 2 or 3 (the official splits), got {options.split_id}")
    video_root = next(
        (d for d in (child_ci(root, name, want_dir=True) for name in _VIDEO_DIRS) if d is not None), root
    )
    k = options.split_id
    train_name, test_name = f"trainlist{k:02d}.txt", f"testlist{k:02d}.txt"
    lists = _find_lists(root, video_root, train_name)
    class_file = _list_file(lists, "classInd.txt")
    train_file, test_file = _list_file(lists, train_name), _list_file(lists, test_name)

    problems = Problems()
    all_classes = _read_class_index(class_file, problems)
    problems.raise_if_any(f"ucf101:{class_file}")
    classes = select_classes(NAME, all_classes, options, where=f"the {len(all_classes)} classes of {class_file}")
    wanted = set(classes)
    folded = {c.lower(): c for c in all_classes}

    disk = _Disk(video_root)
    prefix = video_root.relative_to(root).as_posix()
    rows: list[Row] = []
    missing: list[tuple[Path, int, str]] = []
    n_listed = 0
    for split, file in (("train", train_file), ("test", test_file)):
        text = read_text(file)
        if not text.strip():
            problems.add(file, 1, f"empty file (no videos listed for split '{split}')")
            continue
        for line_no, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line:
                continue
            tokens = line.split()
            if len(tokens) > 2:
                problems.add(file, line_no, f"expected '<Class>/<video> [<index>]', got {len(tokens)} columns")
                continue
            listed = tokens[0].replace("\\", "/").strip("/")
            stem = listed.rsplit("/", 1)[-1].rsplit(".", 1)[0]
            if "/" in listed:
                named = listed.split("/", 1)[0]
            else:
                m = _FILE.match(stem)
                named = m["cls"] if m else ""
            label = folded.get(named.lower())
            if len(tokens) == 2:
                try:
                    idx = int(tokens[1])
                except ValueError:
                    problems.add(file, line_no, f"class index '{tokens[1]}' is not an integer")
                    continue
                if not 1 <= idx <= len(all_classes):
                    problems.add(
                        file, line_no, f"class index {idx} out of range (classInd.txt has 1..{len(all_classes)})"
                    )
                    continue
                by_idx = all_classes[idx - 1]
                if named and named.lower() != by_idx.lower():
                    problems.add(file, line_no, f"class index {idx} is '{by_idx}' but the path is in '{named}'")
                    continue
                label = by_idx
            if label is None:
                problems.add(
                    file, line_no, f"cannot tell the class of '{listed}': '{named}' is not in {class_file.name}"
                )
                continue
            if label not in wanted:
                continue
            n_listed += 1
            path, why = disk.find(listed)
            if path is None:
                if options.check_files:
                    missing.append((file, line_no, why))
                    continue
                rel = f"{prefix}/{listed}" if prefix != "." else listed
            else:
                rel = path.relative_to(root).as_posix()
            rows.append(Row(file, line_no, rel, label, split, video_id=stem))
    if n_listed and len(missing) == n_listed:
        raise dataset_error(
            NAME, f"none of the {n_listed} videos listed in {train_file.name} and {test_file.name} was found "
            f"under {video_root}; {_EXPECTED_VIDEOS}"
        )
    for file, line_no, why in missing:
        problems.add(file, line_no, why)
    return finish(
        NAME,
        rows,
        root=root,
        classes=classes,
        class_origin=options.class_origin or str(class_file),
        options=options,
        problems=problems,
        source=f"ucf101:{root} (split {k}: {train_file.name}, {test_file.name})",
        check_files=False,  # found on disk above (or check_files is off)
    )
