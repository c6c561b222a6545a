"""Tests for dance.data.index: every index format, every bad-input message, fingerprint, val split."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from dance.data.formats import load_index
from dance.data.formats.annotations import read_index_csv
from dance.data.index import VideoIndex, VideoRecord, make_val_split
from dance.data.validation import MAX_REPORTED_PROBLEMS
from dance.errors import IndexFormatError

# --- helpers


def touch(path: Path, data: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_csv_dataset(root: Path, rows: list[tuple[str, str, str]], *, create: bool = True) -> Path:
    """annotations.csv with ``path,label,split`` rows (plus an extra column) and the empty videos."""
    lines = ["path,label,split,notes"]
    for path, label, split in rows:
        lines.append(f"{path},{label},{split},x")
        if create and path and not path.startswith(("/", "..")):
            touch(root / path)
    return write(root / "annotations.csv", "\n".join(lines) + "\n")


GOOD_ROWS = [
    ("videos/jump/a.mp4", "jump", "train"),
    ("videos/jump/b.mp4", "jump", "train"),
    ("videos/run/c.avi", "run", "train"),
    ("videos/run/d.avi", "run", "train"),
    ("videos/jump/e.mp4", "jump", "test"),
    ("videos/run/f.mkv", "run", "test"),
]


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(IndexFormatError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def assert_names(msg: str, file: Path | str, line: int | None, *fragments: str) -> None:
    where = f"{file}:{line}:" if line is not None else f"{file}:"
    assert where in msg, f"{where!r} not in {msg!r}"
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in {msg!r}"


# --- format 1: csv


def test_csv_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    csv_file = make_csv_dataset(root, GOOD_ROWS)
    index = load_index(csv_file)
    assert index.root == root.resolve()
    assert index.source == f"csv:{csv_file}"
    assert index.classes == ["jump", "run"]
    assert len(index) == 6
    first = index.records[0]
    assert first == VideoRecord("videos__jump__a", root.resolve() / "videos/jump/a.mp4", "jump", "train")
    assert [r.video_id for r in index.split("test")] == ["videos__jump__e", "videos__run__f"]
    np.testing.assert_array_equal(index.labels("train"), [0, 0, 1, 1])
    assert index.labels("train").dtype == np.int64
    assert index.labels("val").shape == (0,)
    assert index.counts() == {"train": {"jump": 2, "run": 2}, "test": {"jump": 1, "run": 1}}
    assert index.split_names == ["train", "test"]

    saved = index.to_csv(tmp_path / "run" / "index.csv")
    text = saved.read_text()
    assert "video_id,path,label,split" in text and "videos/jump/a.mp4" in text
    back = read_index_csv(saved)
    assert back.records == index.records
    assert back.classes == index.classes and back.root == index.root and back.source == index.source
    assert back.fingerprint() == index.fingerprint()


def test_from_csv_relocated_root_and_class_order(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    csv_file = make_csv_dataset(root, GOOD_ROWS)
    index = load_index(csv_file, classes=["run", "jump", "swim"])
    assert index.classes == ["run", "jump", "swim"]
    np.testing.assert_array_equal(index.labels("test"), [1, 0])
    saved = index.to_csv(tmp_path / "index.csv")
    moved = tmp_path / "moved"
    root.rename(moved)
    back = read_index_csv(saved, root=moved, check_files=True)
    assert back.classes == ["run", "jump", "swim"]
    assert back.records[0].path == moved.resolve() / "videos/jump/a.mp4"
    assert [r.video_id for r in back.records] == [r.video_id for r in index.records]


def test_from_csv_reports_bad_rows(tmp_path: Path) -> None:
    bad = write(tmp_path / "index.csv", "# dance-index: v1\nvideo_id,path,label,split\na,a.mp4,x\n")
    assert_names(error_of(read_index_csv, bad), bad, 3, "wrong number of columns")


def test_csv_directory_with_annotations_and_absolute_paths(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    rows = [(p, lab, s) for p, lab, s in GOOD_ROWS]
    make_csv_dataset(root, rows)
    # an absolute path inside the root is accepted and gets the same id as the relative spelling
    text = (root / "annotations.csv").read_text().replace("videos/run/f.mkv", str(root / "videos/run/f.mkv"))
    write(root / "annotations.csv", text)
    index = load_index(root)
    assert index.source.startswith("csv:")
    assert index.records[-1].video_id == "videos__run__f"


def test_csv_id_column_and_case_insensitive_header_and_split(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    touch(root / "a.mp4")
    touch(root / "b.mp4")
    csv_file = write(root / "list.csv", "Clip,Path,Label,Split\nc1,a.mp4,jump,Train\nc2,b.mp4,jump,TEST\n")
    index = load_index(csv_file, id_column="clip")
    assert [(r.video_id, r.split) for r in index.records] == [("c1", "train"), ("c2", "test")]


def test_pose_csv_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "poses_ds"
    csv_file = write(
        root / "annotations.csv", "video_id,label,split\np1,wave,train\np2,wave,test\np3,clap,train\n"
    )
    for vid in ("p1", "p2", "p3"):
        touch(root / "poses" / f"{vid}.npz")
    index = load_index(csv_file)
    assert index.source.startswith("pose-csv:")
    assert [r.video_id for r in index.records] == ["p1", "p2", "p3"]
    assert index.records[0].path == root.resolve() / "poses/p1.npz"
    assert index.classes == ["clap", "wave"]
    back = read_index_csv(index.to_csv(tmp_path / "i.csv"))
    assert back.records == index.records
    assert load_index(csv_file, fmt="pose").records == index.records


def test_pose_csv_missing_file_and_bad_id(tmp_path: Path) -> None:
    root = tmp_path / "poses_ds"
    csv_file = write(root / "annotations.csv", "video_id,label,split\np1,wave,train\n../p2,wave,test\n")
    msg = error_of(load_index, csv_file)
    assert_names(msg, csv_file, 2, "missing pose file 'poses/p1.npz'")
    assert_names(msg, csv_file, 3, "not a plain name")
    write(csv_file, "video_id,label,split\np1,wave,train\n")
    assert load_index(csv_file, check_files=False, required_splits=("train",)).records[0].video_id == "p1"


# --- format 2: folders


def test_class_folders_with_split_folders(tmp_path: Path) -> None:
    root = tmp_path / "folders"
    touch(root / "train/jump/a.mp4")
    touch(root / "train/jump/sub/b.MOV")
    touch(root / "train/run/c.webm")
    touch(root / "train/run/notes.txt")
    touch(root / "train/run/.hidden.mp4")
    touch(root / "test/jump/d.m4v")
    touch(root / "test/run/e.mpeg")
    touch(root / "val/run/f.mpg")
    index = load_index(root)
    assert index.source == f"folders:{root}"
    assert [r.video_id for r in index.records] == [
        "test__jump__d",
        "test__run__e",
        "train__jump__a",
        "train__jump__sub__b",
        "train__run__c",
        "val__run__f",
    ]
    assert index.counts()["train"] == {"jump": 2, "run": 1}
    assert index.split_names == ["train", "val", "test"]
    assert load_index(root, fmt="folders").records == index.records


def test_class_folders_flat_with_split_lists(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    for p in ("jump/a.mp4", "jump/b.mp4", "run/c.mp4", "run/d.mp4"):
        touch(root / p)
    train = write(root / "splits/train.txt", "jump/a.mp4\nrun/c.mp4\n\n")
    test = write(root / "splits/test.txt", "jump/b.mp4\nrun/d.mp4\n")
    index = load_index(root, splits={"train": train, "test": test})
    assert index.source.startswith("folders:")
    assert [(r.video_id, r.label, r.split) for r in index.records] == [
        ("jump__a", "jump", "train"),
        ("run__c", "run", "train"),
        ("jump__b", "jump", "test"),
        ("run__d", "run", "test"),
    ]
    # relative list-file paths are resolved against the dataset root
    again = load_index(
        root, fmt="folders", splits={"train": Path("splits/train.txt"), "test": "splits/test.txt"}
    )
    assert again.records == index.records


def test_class_folders_flat_without_splits_says_split_missing(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    touch(root / "jump/a.mp4")
    msg = error_of(load_index, root)
    assert_names(msg, root, None, "split is missing", "splits=")


def test_class_folders_problems(tmp_path: Path) -> None:
    root = tmp_path / "folders"
    touch(root / "train/jump/a.mp4")
    touch(root / "train/loose.mp4")
    touch(root / "holdout/jump/b.mp4")
    touch(root / "stray.avi")
    msg = error_of(load_index, root)
    assert_names(msg, root / "train" / "loose.mp4", None, "not inside a class folder")
    assert_names(msg, root / "holdout", None, "unknown split folder 'holdout'", "train, val, test")
    assert_names(msg, root / "stray.avi", None, "not inside a split/class folder")
    assert_names(msg, root, None, "split 'test' has no videos")


def test_flat_split_list_path_outside_class_folder(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    touch(root / "a.mp4")
    touch(root / "jump/b.mp4")
    train = write(root / "train.txt", "jump/b.mp4\na.mp4\n")
    test = write(root / "test.txt", "jump/b.mp4\n")
    msg = error_of(load_index, root, splits={"train": train, "test": test})
    assert_names(msg, train, 2, "not inside a class folder")
    assert "duplicate path 'jump/b.mp4'" in msg and f"first at {train}:1" in msg
    assert_names(msg, test, 1)


def test_directory_with_no_videos(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    touch(root / "readme.txt")
    assert_names(error_of(load_index, root), root, None, "no video files found")
    root2 = tmp_path / "empty_splits"
    (root2 / "train" / "jump").mkdir(parents=True)
    (root2 / "test").mkdir()
    assert_names(error_of(load_index, root2), root2, None, "no video files found")


# --- format 3: split csv


def make_split_csv(root: Path) -> dict[str, Path]:
    for p in ("v/a.mp4", "v/b.mp4", "v/c.mp4", "v/d.mp4", "v/e.mp4"):
        touch(root / p)
    return {
        "train": write(root / "train.csv", "v/a.mp4,jump\nv/b.mp4,run\n"),
        "val": write(root / "val.csv", "path,label\nv/c.mp4,jump\n"),
        "test": write(root / "test.csv", '"v/d.mp4",jump\nv/e.mp4,run\n'),
    }


def test_split_csv_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "sc"
    splits = make_split_csv(root)
    index = load_index(root, splits=splits)
    assert index.source.startswith("split-csv:")
    assert [(r.video_id, r.label, r.split) for r in index.records] == [
        ("v__a", "jump", "train"),
        ("v__b", "run", "train"),
        ("v__c", "jump", "val"),
        ("v__d", "jump", "test"),
        ("v__e", "run", "test"),
    ]
    assert load_index(root, fmt="split_csv", splits=splits).records == index.records
    back = read_index_csv(index.to_csv(tmp_path / "copy.csv"))
    assert back.records == index.records


def test_split_csv_bad_rows(tmp_path: Path) -> None:
    root = tmp_path / "sc"
    splits = make_split_csv(root)
    write(splits["train"], "v/a.mp4,jump\nv/b.mp4\nv/zz.mp4,run\n,run\nv/b.mp4,\nv/a.mp4,jump,extra\n")
    msg = error_of(load_index, root, splits=splits, classes=["jump", "run"])
    assert_names(msg, splits["train"], 2, "wrong number of columns", "expected 2")
    assert_names(msg, splits["train"], 3, "missing video file 'v/zz.mp4'")
    assert_names(msg, splits["train"], 4, "empty path")
    assert_names(msg, splits["train"], 5, "empty label")
    assert_names(msg, splits["train"], 6, "wrong number of columns")


def test_split_csv_unknown_label_with_class_list(tmp_path: Path) -> None:
    root = tmp_path / "sc"
    splits = make_split_csv(root)
    classes = write(root / "classes.txt", "jump\nrun\n")
    msg = error_of(load_index, root, splits=splits, classes=["jump"])
    assert_names(msg, splits["train"], 2, "unknown label 'run'", "given class list")
    msg = error_of(load_index, root, splits=splits, classes=write(classes, "jump\n"))
    assert_names(msg, splits["test"], 2, "unknown label 'run'", str(classes))


def test_split_names_from_splits_argument(tmp_path: Path) -> None:
    root = tmp_path / "sc"
    splits = make_split_csv(root)
    bad = {"train": splits["train"], "holdout": splits["test"]}
    msg = error_of(load_index, root, splits=bad)
    assert "unknown split 'holdout'" in msg and "train, val, test" in msg and str(splits["test"]) in msg
    index = load_index(root, splits=bad, allowed_splits=None, required_splits=("train",))
    assert index.split_names == ["train", "holdout"]
    missing = error_of(load_index, root, splits={"train": root / "nope.csv", "test": splits["test"]})
    assert "nope.csv" in missing and "not found" in missing


# --- format 4: mmaction2


def make_mmaction(root: Path) -> tuple[dict[str, Path], Path]:
    for p in ("clips/a.mp4", "clips/b.mp4", "clips/c.mp4", "clips/d.mp4"):
        touch(root / p)
    classes = write(root / "classes.txt", "jump\nrun\n\n")
    splits = {
        "train": write(root / "train_list.txt", "clips/a.mp4 0\nclips/b.mp4 1\n"),
        "test": write(root / "test_list.txt", "clips/c.mp4 0\n\nclips/d.mp4 1\n"),
    }
    return splits, classes


def test_mmaction2_round_trip(tmp_path: Path) -> None:
    root = tmp_path / "mm"
    splits, classes = make_mmaction(root)
    index = load_index(root, splits=splits, classes=classes)
    assert index.source.startswith("mmaction2:") and "classes.txt" in index.source
    assert index.classes == ["jump", "run"]
    assert [(r.video_id, r.label, r.split) for r in index.records] == [
        ("clips__a", "jump", "train"),
        ("clips__b", "run", "train"),
        ("clips__c", "jump", "test"),
        ("clips__d", "run", "test"),
    ]
    assert load_index(root, fmt="mmaction2", splits=splits, classes=str(classes)).records == index.records
    assert read_index_csv(index.to_csv(tmp_path / "c.csv")).records == index.records


def test_mmaction2_bad_rows(tmp_path: Path) -> None:
    root = tmp_path / "mm"
    splits, classes = make_mmaction(root)
    write(splits["train"], "clips/a.mp4 0\nclips/b.mp4 7\nclips/b.mp4 x\nclips/b.mp4\nclips/b.mp4 1 3\n")
    msg = error_of(load_index, root, splits=splits, classes=classes)
    assert_names(msg, splits["train"], 2, "index 7 is out of range", "2 classes")
    assert_names(msg, splits["train"], 3, "'x' is not an integer")
    assert_names(msg, splits["train"], 4, "wrong number of columns")
    assert_names(msg, splits["train"], 5, "wrong number of columns")
    assert_names(msg, splits["test"], 3, "class 'run'", "none in 'train'")


def test_mmaction2_needs_classes_and_bad_class_file(tmp_path: Path) -> None:
    root = tmp_path / "mm"
    splits, classes = make_mmaction(root)
    assert "classes=" in error_of(load_index, root, splits=splits)
    write(classes, "jump\n\nrun\njump\n")
    msg = error_of(load_index, root, splits=splits, classes=classes)
    assert_names(msg, classes, 2, "empty class name")
    assert_names(msg, classes, 4, "duplicate class name 'jump'", "line 1")
    write(classes, "\n\n")
    assert_names(error_of(load_index, root, splits=splits, classes=classes), classes, 1, "empty file")


# --- bad input


def test_missing_video_file(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    csv_file = make_csv_dataset(root, GOOD_ROWS)
    (root / "videos/run/d.avi").unlink()
    msg = error_of(load_index, csv_file)
    assert_names(msg, csv_file, 5, "missing video file 'videos/run/d.avi'")
    assert len(load_index(csv_file, check_files=False)) == 6
    (root / "videos/run/d.avi").mkdir()
    assert_names(error_of(load_index, csv_file), csv_file, 5, "is a directory")


def test_unknown_label_with_class_list(tmp_path: Path) -> None:
    csv_file = make_csv_dataset(tmp_path / "ds", GOOD_ROWS)
    msg = error_of(load_index, csv_file, classes=["jump"])
    assert_names(msg, csv_file, 4, "unknown label 'run'")
    assert_names(msg, csv_file, 7, "unknown label 'run'")


def test_empty_label_and_path(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS, ("videos/x.mp4", "", "train"), ("", "jump", "train"), ("videos/y.mp4", "jump", "")]
    csv_file = make_csv_dataset(tmp_path / "ds", rows)
    msg = error_of(load_index, csv_file)
    assert_names(msg, csv_file, 8, "empty label")
    assert_names(msg, csv_file, 9, "empty path")
    assert_names(msg, csv_file, 10, "empty split")


def test_duplicate_path_names_both_lines(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS, ("videos/jump/./a.mp4", "jump", "test")]
    csv_file = make_csv_dataset(tmp_path / "ds", rows)
    msg = error_of(load_index, csv_file)
    assert_names(msg, csv_file, 8, "duplicate path 'videos/jump/./a.mp4'", f"first at {csv_file}:2")


def test_duplicate_video_id(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS, ("videos/jump/a.avi", "jump", "test")]
    csv_file = make_csv_dataset(tmp_path / "ds", rows)
    msg = error_of(load_index, csv_file)
    assert_names(msg, csv_file, 8, "duplicate video id 'videos__jump__a'", f"first at {csv_file}:2")


def test_paths_escaping_the_root(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    outside = touch(tmp_path / "outside" / "secret.mp4")
    (root / "videos").mkdir(parents=True)
    os.symlink(outside, root / "videos" / "link.mp4")
    os.symlink(outside.parent, root / "videos" / "linkdir")
    rows = [
        *GOOD_ROWS,
        ("../outside/secret.mp4", "jump", "train"),
        (str(outside), "jump", "train"),
        ("videos/link.mp4", "jump", "train"),
        ("videos/linkdir/secret.mp4", "jump", "train"),
        ("videos/../../outside/secret.mp4", "jump", "train"),
    ]
    csv_file = make_csv_dataset(root, rows, create=False)
    for p, _, _ in GOOD_ROWS:
        touch(root / p)
    msg = error_of(load_index, csv_file)
    assert_names(msg, csv_file, 8, "escapes the dataset root")
    assert_names(msg, csv_file, 9, "is outside the dataset root")
    assert_names(msg, csv_file, 10, "outside the dataset root", "symlink")
    assert_names(msg, csv_file, 11, "outside the dataset root", "symlink")
    assert_names(msg, csv_file, 12, "escapes the dataset root")


def test_symlink_inside_root_is_fine(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    csv_file = make_csv_dataset(root, GOOD_ROWS)
    target = touch(root / "store/z.mp4")
    os.symlink(target, root / "videos/jump/alias.mp4")
    write(csv_file, csv_file.read_text() + "videos/jump/alias.mp4,jump,test,x\n")
    index = load_index(csv_file)
    assert index.records[-1].path == root.resolve() / "videos/jump/alias.mp4"
    assert index.records[-1].video_id == "videos__jump__alias"
    # a link to a file that is already listed is the same video twice
    os.symlink(root / "videos/jump/a.mp4", root / "videos/jump/alias2.mp4")
    write(csv_file, csv_file.read_text() + "videos/jump/alias2.mp4,jump,test,x\n")
    msg = error_of(load_index, csv_file)
    assert_names(msg, csv_file, 9, "duplicate path 'videos/jump/alias2.mp4'", f"first at {csv_file}:2")


def test_unknown_split_name(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS, ("videos/jump/z.mp4", "jump", "holdout")]
    csv_file = make_csv_dataset(tmp_path / "ds", rows)
    msg = error_of(load_index, csv_file)
    assert_names(msg, csv_file, 8, "unknown split 'holdout'", "allowed split names: train, val, test")
    index = load_index(csv_file, allowed_splits=None)
    assert index.split_names == ["train", "test", "holdout"]


def test_required_split_empty(tmp_path: Path) -> None:
    rows = [r for r in GOOD_ROWS if r[2] == "train"]
    csv_file = make_csv_dataset(tmp_path / "ds", rows)
    assert_names(error_of(load_index, csv_file), csv_file, None, "split 'test' has no videos")
    assert len(load_index(csv_file, required_splits=("train",))) == 4
    msg = error_of(load_index, csv_file, required_splits=("train", "val"))
    assert "split 'val' has no videos" in msg


def test_wrong_number_of_columns(tmp_path: Path) -> None:
    csv_file = make_csv_dataset(tmp_path / "ds", GOOD_ROWS)
    write(csv_file, csv_file.read_text() + "videos/jump/a.mp4,jump\nq.mp4,jump,train,x,y\n")
    msg = error_of(load_index, csv_file)
    assert_names(msg, csv_file, 8, "wrong number of columns", "expected 4", "got 2")
    assert_names(msg, csv_file, 9, "got 5")


def test_missing_header_columns(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    csv_file = write(root / "annotations.csv", "file,label\na.mp4,jump\n")
    msg = error_of(load_index, csv_file)
    assert_names(msg, csv_file, 1, "missing required column(s): path (or video_id), split")
    headerless = write(root / "list.csv", "\na.mp4,jump,train\n")
    msg = error_of(load_index, headerless)
    assert_names(msg, headerless, 2, "missing required column", "looks like data", "splits=")
    msg = error_of(load_index, write(root / "x.csv", "path,label,split\n"), id_column="clip")
    assert "clip (id_column)" in msg


def test_empty_files(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    csv_file = write(root / "annotations.csv", "")
    assert_names(error_of(load_index, csv_file), csv_file, 1, "empty file")
    assert_names(error_of(load_index, write(csv_file, "\n \n")), csv_file, 1, "empty file")
    splits = make_split_csv(tmp_path / "sc")
    write(splits["test"], "")
    msg = error_of(load_index, tmp_path / "sc", splits=splits)
    assert_names(msg, splits["test"], 1, "empty file")


def test_class_in_test_but_not_train(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS, ("videos/swim/g.mp4", "swim", "test"), ("videos/swim/h.mp4", "swim", "test")]
    csv_file = make_csv_dataset(tmp_path / "ds", rows)
    msg = error_of(load_index, csv_file)
    assert_names(msg, csv_file, 8, "class 'swim' has 2 video(s) in split 'test' but none in 'train'")
    assert msg.count("class 'swim'") == 1


def test_problems_are_collected_and_capped(tmp_path: Path) -> None:
    rows = list(GOOD_ROWS) + [(f"videos/missing{i}.mp4", "jump", "train") for i in range(30)]
    rows.append(("videos/jump/a.mp4", "jump", "bogus"))
    csv_file = make_csv_dataset(tmp_path / "ds", rows, create=False)
    for p, _, _ in GOOD_ROWS:
        touch(tmp_path / "ds" / p)
    msg = error_of(load_index, csv_file)
    assert msg.startswith("32 problems in video index")
    listed = [ln for ln in msg.splitlines() if re.search(r"annotations\.csv:\d+:", ln)]
    assert len(listed) == MAX_REPORTED_PROBLEMS
    assert f"{csv_file}:8:" in msg  # first lines are shown
    assert "... and 12 more" in msg


def test_unknown_format_and_missing_source(tmp_path: Path) -> None:
    assert "unknown index format" in error_of(load_index, tmp_path, fmt="yaml")
    assert "not found" in error_of(load_index, tmp_path / "nope.csv")
    assert "annotations.csv" in error_of(load_index, tmp_path, fmt="csv")
    assert "splits=" in error_of(load_index, tmp_path, fmt="split_csv")


# --- fingerprint


def test_fingerprint_changes_when_a_file_changes(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    csv_file = make_csv_dataset(root, GOOD_ROWS)
    index = load_index(csv_file)
    fp = index.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", fp)
    assert load_index(csv_file).fingerprint() == fp
    video = root / "videos/run/c.avi"
    video.write_bytes(b"new content")
    fp2 = index.fingerprint()
    assert fp2 != fp
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    assert index.fingerprint() != fp2
    relabelled = VideoIndex(index.root, [*index.records[:-1]], index.classes, index.source)
    assert relabelled.fingerprint() != index.fingerprint()


# --- val split


def make_big_index(tmp_path: Path) -> VideoIndex:
    rows = []
    for label, n in (("a", 20), ("b", 7), ("c", 2), ("d", 1)):
        rows += [(f"v/{label}/{i:02d}.mp4", label, "train") for i in range(n)]
        rows.append((f"v/{label}/t.mp4", label, "test"))
    return load_index(make_csv_dataset(tmp_path / "big", rows))


def test_make_val_split_stratified_and_deterministic(tmp_path: Path) -> None:
    index = make_big_index(tmp_path)
    before = list(index.records)
    split = make_val_split(index, fraction=0.15, seed=3)
    assert index.records == before  # not mutated
    assert "val" not in index.split_names
    counts = split.counts()
    assert counts["val"] == {"a": 3, "b": 1, "c": 1, "d": 0}
    assert counts["train"] == {"a": 17, "b": 6, "c": 1, "d": 1}
    assert counts["test"] == index.counts()["test"]
    assert [r.video_id for r in split.records] == [r.video_id for r in index.records]
    again = make_val_split(index, fraction=0.15, seed=3)
    assert again.records == split.records
    other = make_val_split(index, fraction=0.15, seed=4)
    assert {r.video_id for r in other.split("val")} != {r.video_id for r in split.split("val")}
    # a val split that already exists is kept
    assert make_val_split(split, seed=9).records == split.records


def test_make_val_split_bad_input(tmp_path: Path) -> None:
    index = make_big_index(tmp_path)
    assert "fraction" in error_of(make_val_split, index, fraction=1.5)
    no_train = VideoIndex(index.root, index.split("test"), index.classes, "x")
    assert "'train' has no videos" in error_of(make_val_split, no_train)
