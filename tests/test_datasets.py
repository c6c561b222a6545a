"""Dataset adapters (KTH, UCF-101, HAA500 / HAA-100, Penn Action RGB) on tiny fake layouts, and frame folders."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from dance.config import load_settings
from dance.data.datasets import DATASET_FORMATS, DATASETS
from dance.data.datasets.kth import KTH_CLASSES, KTH_SPLIT
from dance.data.formats import FORMATS, load_index
from dance.data.formats.annotations import read_index_csv
from dance.data.index import VideoIndex
from dance.data.video import is_video, read_video, video_info
from dance.errors import IndexFormatError, VideoDecodeError

# --- helpers


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def error_of(fn, *args, **kwargs) -> str:
    with pytest.raises(IndexFormatError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def split_counts(index: VideoIndex) -> dict[str, int]:
    return {s: len(index.split(s)) for s in index.split_names}


def test_registry_matches_formats() -> None:
    assert tuple(DATASETS) == DATASET_FORMATS
    assert set(DATASET_FORMATS) <= set(FORMATS)


# --- KTH


def make_kth(root: Path, *, flat: bool = False, scenarios: tuple[int, ...] = (1, 2)) -> Path:
    for action in KTH_CLASSES:
        for person in range(1, 26):
            for d in scenarios:
                name = f"person{person:02d}_{action}_d{d}_uncomp.avi"
                touch(root / name if flat else root / action / name)
    return root


@pytest.mark.parametrize("flat", [False, True])
def test_kth_official_person_split(tmp_path: Path, flat: bool) -> None:
    index = load_index(make_kth(tmp_path / "KTH", flat=flat), fmt="kth")
    assert index.classes == ["boxing", "handclapping", "handwaving", "jogging", "running", "walking"]
    # 8 train, 8 val, 9 test persons; 2 scenarios each
    for split, n_persons in (("train", 8), ("val", 8), ("test", 9)):
        assert index.counts()[split] == dict.fromkeys(KTH_CLASSES, 2 * n_persons)
    persons = {s: sorted({int(r.video_id[6:8]) for r in index.split(s)}) for s in ("train", "val", "test")}
    assert persons == {
        "train": [11, 12, 13, 14, 15, 16, 17, 18],
        "val": [1, 4, 19, 20, 21, 23, 24, 25],
        "test": [2, 3, 5, 6, 7, 8, 9, 10, 22],
    }
    rec = next(r for r in index.records if r.video_id == "person01_boxing_d1_uncomp")
    assert rec.label == "boxing" and rec.split == "val" and rec.path.is_file()
    assert len(KTH_SPLIT) == 25


def test_kth_merge_val_and_subset(tmp_path: Path) -> None:
    root = make_kth(tmp_path / "KTH", scenarios=(1,))
    merged = load_index(root, fmt="kth", merge_val=True)
    assert split_counts(merged) == {"train": 16 * 6, "test": 9 * 6}
    assert "val merged into train" in merged.source
    sub = load_index(root, fmt="kth", classes=["walking", "Boxing"])
    assert sub.classes == ["walking", "boxing"]
    assert split_counts(sub) == {"train": 16, "val": 16, "test": 18}


def test_kth_missing_pieces(tmp_path: Path) -> None:
    msg = error_of(load_index, tmp_path / "nope", fmt="kth")
    assert msg.startswith("KTH: ") and "not found" in msg and "boxing/" in msg
    (tmp_path / "empty").mkdir()
    assert "no video files found" in error_of(load_index, tmp_path / "empty", fmt="kth")
    touch(tmp_path / "other" / "clip.avi")
    assert "no KTH videos" in error_of(load_index, tmp_path / "other", fmt="kth")

    root = make_kth(tmp_path / "KTH", scenarios=(1,))
    for action in ("jogging", "running"):  # a partial download: two of the six zips missing
        for f in (root / action).iterdir():
            f.unlink()
    msg = error_of(load_index, root, fmt="kth")
    assert "no KTH videos of class(es) jogging, running (an incomplete download?); expected <class>/person" in msg

    root = make_kth(tmp_path / "KTH2", scenarios=(1,))
    touch(root / "boxing" / "person26_boxing_d1_uncomp.avi")
    touch(root / "boxing" / "person02_walking_d1_uncomp.avi")
    touch(root / "boxing" / "person02_boxing_d7_uncomp.avi")
    touch(root / "boxing" / "holiday.avi")
    touch(root / "boxing" / "person02_skating_d1_uncomp.avi")
    msg = error_of(load_index, root, fmt="kth")
    assert "5 problems" in msg
    assert "unknown KTH person 26" in msg
    assert "a 'walking' video in the class folder 'boxing'" in msg
    assert "unknown KTH scenario d7" in msg
    assert "holiday.avi: not a KTH video name" in msg
    assert "unknown KTH action 'skating'" in msg

    msg = error_of(load_index, make_kth(tmp_path / "KTH3", scenarios=(1,)), fmt="kth", split_id=2)
    assert "single official split" in msg
    assert "remove splits=" in error_of(load_index, tmp_path / "KTH3", fmt="kth", splits={"train": "x.txt"})
    msg = error_of(load_index, tmp_path / "KTH3", fmt="kth", classes=["boxin"])
    assert "'boxin' (did you mean boxing?)" in msg


# --- UCF-101

UCF_CLASSES = ("ApplyEyeMakeup", "HandstandPushups", "YoYo")
#: on-disk spelling: the video files of HandstandPushups are named v_HandStandPushups_...
UCF_FILE_CLASS = {"ApplyEyeMakeup": "ApplyEyeMakeup", "HandstandPushups": "HandStandPushups", "YoYo": "YoYo"}


def write_crlf(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode())


def make_ucf_lists(lists: Path) -> None:
    write_crlf(lists / "classInd.txt", [f"{i} {c}" for i, c in enumerate(UCF_CLASSES, start=1)])
    for k in (1, 2, 3):
        test_groups = range(7 * (k - 1) + 1, 7 * k + 1)
        train, test = [], []
        for i, c in enumerate(UCF_CLASSES, start=1):
            for g in range(1, 22):
                path = f"{c}/v_{UCF_FILE_CLASS[c]}_g{g:02d}_c01.avi"
                (test.append(path) if g in test_groups else train.append(f"{path} {i}"))
        write_crlf(lists / f"trainlist{k:02d}.txt", train)
        write_crlf(lists / f"testlist{k:02d}.txt", test)


def make_ucf(root: Path, *, flat: bool = False, folder_case: str = "HandStandPushups") -> Path:
    """root/UCF-101/<Class>/v_...avi (the HandstandPushups folder spelled ``folder_case``) + root/ucfTrainTestlist."""
    for c in UCF_CLASSES:
        folder = folder_case if c == "HandstandPushups" else c
        for g in range(1, 22):
            name = f"v_{UCF_FILE_CLASS[c]}_g{g:02d}_c01.avi"
            touch(root / "UCF-101" / name if flat else root / "UCF-101" / folder / name)
    make_ucf_lists(root / "ucfTrainTestlist")
    return root


def test_ucf_split_1_vs_2_and_case_insensitive_paths(tmp_path: Path) -> None:
    root = make_ucf(tmp_path / "ucf")
    one = load_index(root, fmt="ucf101")
    two = load_index(root, fmt="ucf101", split_id=2)
    assert one.classes == list(UCF_CLASSES)
    for index in (one, two):
        assert index.counts() == {"train": dict.fromkeys(UCF_CLASSES, 14), "test": dict.fromkeys(UCF_CLASSES, 7)}
    vid = "v_ApplyEyeMakeup_g03_c01"
    assert {r.video_id: r.split for r in one.records}[vid] == "test"
    assert {r.video_id: r.split for r in two.records}[vid] == "train"
    assert {int(r.video_id[-6:-4]) for r in two.split("test")} == set(range(8, 15))
    # the list says HandstandPushups/..., the folder on disk is HandStandPushups/
    hsp = next(r for r in one.records if r.video_id == "v_HandStandPushups_g01_c01")
    assert hsp.label == "HandstandPushups" and hsp.path.is_file()
    assert hsp.path.parent.name == "HandStandPushups"
    assert "split 1" in one.source and "split 2" in two.source


def test_ucf_flat_folder_and_lists_beside_root(tmp_path: Path) -> None:
    make_ucf(tmp_path, flat=True)
    index = load_index(tmp_path / "UCF-101", fmt="ucf101", split_id=3)  # lists in tmp_path, beside the root
    assert split_counts(index) == {"train": 42, "test": 21}
    assert all(r.path.parent.name == "UCF-101" for r in index.records)
    sub = load_index(tmp_path, fmt="ucf101", classes=["yoyo"])
    assert sub.classes == ["YoYo"] and len(sub) == 21


def test_ucf_missing_pieces(tmp_path: Path) -> None:
    root = make_ucf(tmp_path / "ucf")
    lists = root / "ucfTrainTestlist"
    (lists / "testlist02.txt").unlink()
    msg = error_of(load_index, root, fmt="ucf101", split_id=2)
    assert msg == (
        f"UCF-101: {lists / 'testlist02.txt'} not found; expected the official split lists folder "
        "'ucfTrainTestlist' (classInd.txt, trainlist01-03.txt, testlist01-03.txt) beside or inside the root"
    )
    assert "data.split_id must be 1, 2 or 3" in error_of(load_index, root, fmt="ucf101", split_id=4)
    (lists / "classInd.txt").unlink()
    assert f"{lists / 'classInd.txt'} not found" in error_of(load_index, root, fmt="ucf101")
    for f in lists.iterdir():
        f.unlink()
    lists.rmdir()
    msg = error_of(load_index, root, fmt="ucf101")
    assert msg.startswith(f"UCF-101: {root / 'ucfTrainTestlist' / 'trainlist01.txt'} not found; expected the "
                          "official split lists folder 'ucfTrainTestlist'")
    assert str(root.parent / "ucfTrainTestlist") in msg  # where else it looked

    # lists present but no videos where they should be
    make_ucf_lists(tmp_path / "novideo" / "ucfTrainTestlist")
    touch(tmp_path / "novideo" / "other" / "x.avi")
    msg = error_of(load_index, tmp_path / "novideo", fmt="ucf101")
    assert "none of the 63 videos listed in trainlist01.txt and testlist01.txt was found" in msg
    assert error_of(load_index, tmp_path / "missing", fmt="ucf101").startswith("UCF-101: ")


def test_ucf_bad_lines_and_missing_videos(tmp_path: Path) -> None:
    root = make_ucf(tmp_path / "ucf")
    (root / "UCF-101" / "YoYo" / "v_YoYo_g02_c01.avi").unlink()
    train = root / "ucfTrainTestlist" / "trainlist01.txt"
    lines = train.read_bytes().decode().splitlines()
    lines[0] = lines[0].rsplit(" ", 1)[0] + " 3"  # ApplyEyeMakeup/... labelled YoYo
    lines[1] = lines[1] + " extra"
    lines.append("Skating/v_Skating_g01_c01.avi 2")
    train.write_text("\n".join(lines) + "\n")
    msg = error_of(load_index, root, fmt="ucf101")
    assert f"{train}:1: class index 3 is 'YoYo' but the path is in 'ApplyEyeMakeup'" in msg
    assert f"{train}:2: expected '<Class>/<video> [<index>]', got 3 columns" in msg
    assert re.search(r"trainlist01\.txt:\d+: class index 2 is 'HandstandPushups' but the path is in 'Skating'", msg)
    assert "video 'YoYo/v_YoYo_g02_c01.avi' not found under" in msg
    # without file checks the missing video is kept at its listed place
    ok = make_ucf(tmp_path / "ucf2")
    (ok / "UCF-101" / "YoYo" / "v_YoYo_g02_c01.avi").unlink()
    index = load_index(ok, fmt="ucf101", check_files=False)
    rec = next(r for r in index.records if r.video_id == "v_YoYo_g02_c01")
    assert rec.path == (ok / "UCF-101" / "YoYo" / "v_YoYo_g02_c01.avi").resolve()
    # a malformed classInd.txt line
    (ok / "ucfTrainTestlist" / "classInd.txt").write_text("1 ApplyEyeMakeup\nx HandstandPushups\n")
    assert "classInd.txt:2: class index 'x' is not an integer" in error_of(load_index, ok, fmt="ucf101")


# --- HAA500 / HAA-100

HAA_CLASSES = ("abseiling", "baseball_pitch", "soccer_dribble", "yoga_tree")


def make_haa(root: Path, *, per_class_folders: bool = False, n: int = 20) -> Path:
    for c in HAA_CLASSES:
        for i in range(n):
            touch(root / "video" / (c if per_class_folders else "") / f"{c}_{i:03d}.mp4")
    return root


@pytest.mark.parametrize("per_class_folders", [False, True])
def test_haa500_official_split(tmp_path: Path, per_class_folders: bool) -> None:
    index = load_index(make_haa(tmp_path / "haa500_v1_1", per_class_folders=per_class_folders), fmt="haa500")
    assert index.classes == sorted(HAA_CLASSES)
    assert index.counts() == {
        "train": dict.fromkeys(HAA_CLASSES, 16),
        "val": dict.fromkeys(HAA_CLASSES, 1),
        "test": dict.fromkeys(HAA_CLASSES, 3),
    }
    split = {r.video_id: r.split for r in index.records}
    assert split["soccer_dribble_015"] == "train" and split["soccer_dribble_016"] == "val"
    assert split["soccer_dribble_017"] == "test" and split["soccer_dribble_019"] == "test"
    # the folder holding haa500_v1_1/, and the video folder itself, work too
    assert len(load_index(tmp_path, fmt="haa500")) == 80
    assert len(load_index(tmp_path / "haa500_v1_1" / "video", fmt="haa500")) == 80
    assert split_counts(load_index(tmp_path, fmt="haa500", merge_val=True)) == {"train": 68, "test": 12}


def test_haa100_subset_from_class_file(tmp_path: Path) -> None:
    root = make_haa(tmp_path / "haa500_v1_1")
    classes = tmp_path / "haa100.txt"
    classes.write_text("yoga_tree\r\nabseiling\r\n\r\n")
    index = load_index(root, fmt="haa500", classes=classes)
    assert index.classes == ["yoga_tree", "abseiling"]  # the file's order
    assert split_counts(index) == {"train": 32, "val": 2, "test": 6}
    assert "2 classes of class list" in index.source
    classes.write_text("yoga_tree\nsoccer_dribbling\nmoonwalk\n")
    msg = error_of(load_index, root, fmt="haa500", classes=classes)
    assert msg.startswith("HAA500: 2 class(es) of class list")
    assert "'soccer_dribbling' (did you mean soccer_dribble?)" in msg and "'moonwalk'" in msg
    classes.write_text("")
    assert "empty file" in error_of(load_index, root, fmt="haa500", classes=classes)
    assert "class list file not found" in error_of(load_index, root, fmt="haa500", classes=tmp_path / "none.txt")


def test_haa500_missing_pieces(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    msg = error_of(load_index, tmp_path / "empty", fmt="haa500")
    assert msg == (
        f"HAA500: {tmp_path / 'empty' / 'video'} not found; expected the HAA500 v1.1 folder holding "
        "video/<class>_<nnn>.mp4 (e.g. video/abseiling_000.mp4)"
    )
    (tmp_path / "novid" / "video").mkdir(parents=True)
    assert "no video files found" in error_of(load_index, tmp_path / "novid", fmt="haa500")
    root = make_haa(tmp_path / "haa")
    touch(root / "video" / "abseiling_020.mp4")
    touch(root / "video" / "README.mp4")
    msg = error_of(load_index, root, fmt="haa500")
    assert "video number 020 is outside the official 000-019" in msg
    assert "README.mp4: not an HAA500 video name" in msg
    assert "single official split" in error_of(load_index, make_haa(tmp_path / "h2"), fmt="haa500", split_id=3)
    # a class whose train videos are all missing
    root = make_haa(tmp_path / "h3")
    for i in range(16):
        (root / "video" / f"yoga_tree_{i:03d}.mp4").unlink()
    assert "class 'yoga_tree' has 1 video(s) in split 'val' but none in 'train'" in error_of(
        load_index, root, fmt="haa500"
    )


# --- Penn Action RGB and frame folders


def write_mat(path: Path, action: str, train: int, n_frames: int = 3) -> None:
    from scipy.io import savemat

    path.parent.mkdir(parents=True, exist_ok=True)
    xy = np.ones((n_frames, 13), dtype=np.float64)
    savemat(str(path), {"action": action, "train": np.array([[train]]), "x": xy, "y": xy,
                        "visibility": np.ones((n_frames, 13)), "dimensions": np.array([[6, 8, n_frames]])})


def write_frames(folder: Path, n: int = 3, *, size: tuple[int, int] = (8, 6), ext: str = "jpg") -> list[int]:
    """Frames 1..n named 000001.<ext>..., frame k filled with grey level 20 * k; returns the levels."""
    folder.mkdir(parents=True, exist_ok=True)
    levels = []
    for k in range(1, n + 1):
        Image.new("RGB", size, (20 * k,) * 3).save(folder / f"{k:06d}.{ext}")
        levels.append(20 * k)
    return levels


PENN = {"0001": ("squat", 1), "0002": ("squat", -1), "0003": ("pullup", 1), "0004": ("pullup", -1),
        "0005": ("pullup", 1)}


def make_penn(root: Path) -> Path:
    for vid, (action, train) in PENN.items():
        write_mat(root / "labels" / f"{vid}.mat", action, train)
        write_frames(root / "frames" / vid)
    return root


def test_penn_action_rgb_index_and_decode(tmp_path: Path) -> None:
    root = make_penn(tmp_path / "Penn_Action")
    index = load_index(root, fmt="penn_action")
    assert index.classes == ["pullup", "squat"]  # PENN_CLASSES order
    assert index.counts() == {"train": {"pullup": 2, "squat": 1}, "test": {"pullup": 1, "squat": 1}}
    rec = next(r for r in index.records if r.video_id == "0003")
    assert rec.path == (root / "frames" / "0003").resolve() and rec.split == "train" and is_video(rec.path)
    frames = read_video(rec.path)
    assert frames.shape == (3, 6, 8, 3) and frames.dtype == np.uint8
    assert np.allclose(frames[:, 3, 4, 0], [20, 40, 60], atol=6)
    assert read_video(rec.path, max_frames=2, size=16).shape == (2, 16, 16, 3)
    assert video_info(rec.path) == {"frames": 3, "fps": 0.0, "height": 6, "width": 8}
    # the folder holding Penn_Action/ works too, and the saved index reloads with folder records
    assert len(load_index(tmp_path, fmt="penn_action")) == 5
    again = read_index_csv(index.to_csv(tmp_path / "run" / "index.csv"))
    assert [r.path for r in again.records] == [r.path for r in index.records]
    sub = load_index(root, fmt="penn_action", classes=["squat"])
    assert sub.classes == ["squat"] and len(sub) == 2


def test_penn_action_rgb_missing_pieces(tmp_path: Path) -> None:
    (tmp_path / "a" / "frames").mkdir(parents=True)
    msg = error_of(load_index, tmp_path / "a", fmt="penn_action")
    assert msg == (f"Penn Action: {tmp_path / 'a' / 'labels'} not found; expected the Penn_Action folder holding "
                   "frames/<id>/000001.jpg ... and labels/<id>.mat")
    (tmp_path / "b" / "labels").mkdir(parents=True)
    msg = error_of(load_index, tmp_path / "b", fmt="penn_action")
    assert f"Penn Action: {tmp_path / 'b' / 'frames'} not found" in msg
    (tmp_path / "b" / "frames").mkdir()
    assert "no .mat label files" in error_of(load_index, tmp_path / "b", fmt="penn_action")

    root = make_penn(tmp_path / "c")
    for f in (root / "frames" / "0002").iterdir():
        f.unlink()  # empty frame folder
    for f in (root / "frames" / "0004").iterdir():
        f.unlink()
    (root / "frames" / "0004").rmdir()  # label without frames
    write_frames(root / "frames" / "0009")  # frames without label
    (root / "labels" / "0005.mat").write_bytes(b"not a mat file")
    msg = error_of(load_index, root, fmt="penn_action")
    assert "5 problems" in msg and "split 'test' has no videos" in msg
    assert "frames/0002: empty frame folder" in msg
    assert "no frame folder" in msg and "0004" in msg
    assert "frame folder without a label file" in msg and "0009.mat not found" in msg
    assert "0005.mat: not a readable MATLAB label file" in msg


def test_frame_folder_decoding(tmp_path: Path) -> None:
    folder = tmp_path / "clip"
    folder.mkdir()
    for k, name in enumerate(["frame_10.png", "frame_2.png", "frame_1.png"]):  # numeric, not lexical, order
        Image.new("RGB", (5, 4), (10 + 100 * k, 0, 0)).save(folder / name)
    (folder / "notes.txt").write_text("ignored")
    (folder / ".hidden.png").write_bytes(b"")
    out = read_video(folder)
    assert out.shape == (3, 4, 5, 3)
    assert list(out[:, 0, 0, 0]) == [210, 110, 10]  # 1, 2, 10
    Image.new("L", (5, 4), 77).save(folder / "frame_11.png")  # grey → RGB
    assert tuple(read_video(folder)[3, 0, 0]) == (77, 77, 77)
    # a corrupt frame part-way: the frames before it are returned (like a truncated video)
    (folder / "frame_12.png").write_bytes(b"garbage")
    Image.new("RGB", (5, 4)).save(folder / "frame_13.png")
    assert len(read_video(folder)) == 4
    # frames of different sizes need size=
    (folder / "frame_12.png").unlink()
    Image.new("RGB", (6, 4)).save(folder / "frame_12.png")
    with pytest.raises(VideoDecodeError, match="frame_12.png .* is 6x4 but the first frame is 5x4"):
        read_video(folder)
    assert read_video(folder, size=8).shape == (6, 8, 8, 3)


def test_frame_folder_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("x")
    with pytest.raises(VideoDecodeError, match="frame folder has no image files"):
        read_video(empty)
    with pytest.raises(VideoDecodeError, match="frame folder has no image files"):
        video_info(empty)
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "000001.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(VideoDecodeError, match="cannot decode the first frame 000001.jpg"):
        read_video(corrupt)
    with pytest.raises(VideoDecodeError, match="cannot read the first frame"):
        video_info(corrupt)
    with pytest.raises(VideoDecodeError, match="video file not found"):
        read_video(tmp_path / "missing")


# --- settings and pipeline wiring


def test_settings_and_index_stage(tmp_path: Path) -> None:
    from dance.pipeline.index import _load

    root = make_ucf(tmp_path / "ucf")
    settings = load_settings(overrides=[f"data.path={root}", "data.format=ucf101", "data.split_id=2"])
    index = _load(SimpleNamespace(settings=settings))
    assert {r.video_id: r.split for r in index.records}["v_ApplyEyeMakeup_g09_c01"] == "test"
    kth = make_kth(tmp_path / "KTH", scenarios=(1,))
    settings = load_settings(overrides=[f"data.path={kth}", "data.format=kth", "data.merge_val=true"])
    assert split_counts(_load(SimpleNamespace(settings=settings))) == {"train": 96, "test": 54}


def test_generic_formats_reject_split_id_and_accept_merge_val(tmp_path: Path) -> None:
    for split in ("train", "val", "test"):
        touch(tmp_path / "d" / split / "jump" / f"{split}.mp4")
    assert "only the dataset formats" in error_of(load_index, tmp_path / "d", split_id=2)
    assert split_counts(load_index(tmp_path / "d", merge_val=True)) == {"train": 2, "test": 1}
