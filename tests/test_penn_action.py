"""Penn Action adapter: .mat parsing, index, generic-format export, pose source (tiny synthetic .mat files),
plus one slow test on the real labels when ../shared/data is present."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from dance.data.datasets.penn_action import PENN_CLASSES, load_penn_action, read_penn_mat
from dance.data.formats import load_index
from dance.errors import IndexFormatError, PoseFormatError
from dance.motion.penn_action import PENN_JOINTS, PennPoseSource, export_generic
from dance.motion.poses import AnnotationPoseSource
from dance.motion.skeletons import layout_name

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PENN_LABELS = SHARED_DATA / "penn_action" / "labels"


def _fields(t: int = 5, action: str = "squat", train: int = 1, seed: int = 0, h: int = 240, w: int = 320) -> dict:
    """The fields of a Penn Action label file, with the real files' dtypes."""
    rng = np.random.default_rng(seed)
    vis = np.ones((t, 13), np.uint8)
    if t:
        vis[0, 3] = 0
    return {
        "action": action,
        "pose": "front",
        "x": rng.uniform(0, w, (t, 13)),
        "y": rng.uniform(0, h, (t, 13)),
        "visibility": vis,
        "train": np.array([[train]], np.int32),
        "bbox": rng.uniform(0, 100, (t, 4)),
        "dimensions": np.array([[h, w, t]], np.uint16),
        "nframes": np.array([[t]], np.uint8 if t < 256 else np.uint16),
    }


def _write(path: Path, **kw) -> dict:
    drop = kw.pop("drop", ())
    fields = _fields(**{k: kw.pop(k) for k in list(kw) if k in ("t", "action", "train", "seed", "h", "w")})
    fields.update(kw)
    for k in drop:
        del fields[k]
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(path), fields)
    return fields


def _dataset(root: Path, classes=("squat", "pushup", "bowl"), n_train: int = 4, n_test: int = 2) -> dict[str, dict]:
    out = {}
    i = 1
    for c in classes:
        for split, n in (("train", n_train), ("test", n_test)):
            for _ in range(n):
                vid = f"{i:04d}"
                out[vid] = _write(root / "labels" / f"{vid}.mat", t=3 + i % 4, action=c,
                                  train=1 if split == "train" else -1, seed=i, pose=("front", "back", "left")[i % 3])
                i += 1
    return out


# --- read_penn_mat


def test_read_penn_mat_parses_fields(tmp_path: Path):
    f = _write(tmp_path / "0007.mat", t=6, action="bench_press", train=-1, h=360, w=480)
    seq = read_penn_mat(tmp_path / "0007.mat")
    assert (seq.video_id, seq.action, seq.split, seq.view) == ("0007", "bench_press", "test", "front")
    assert seq.n_frames == 6 and seq.size == (360, 480)
    assert seq.keypoints.shape == (6, 13, 2) and seq.keypoints.dtype == np.float32
    assert seq.scores.shape == (6, 13) and seq.scores.dtype == np.float32
    np.testing.assert_allclose(seq.keypoints[..., 0], f["x"], rtol=1e-6)
    np.testing.assert_allclose(seq.keypoints[..., 1], f["y"], rtol=1e-6)
    # an invisible joint keeps its coordinates but has score 0
    assert seq.scores[0, 3] == 0.0 and seq.scores.sum() == 6 * 13 - 1
    np.testing.assert_allclose(seq.keypoints[0, 3], [f["x"][0, 3], f["y"][0, 3]], rtol=1e-6)
    assert len(PENN_JOINTS) == 13 and PENN_JOINTS[0] == "head"


def test_frame_count_is_x_rows_not_nframes(tmp_path: Path):
    # 300 frames, but nframes stored as uint8 wraps to 44
    _write(tmp_path / "0001.mat", t=300, nframes=np.array([[300 % 256]], np.uint8))
    seq = read_penn_mat(tmp_path / "0001.mat")
    assert seq.n_frames == 300 and seq.keypoints.shape[0] == 300
    # nframes and dimensions absent are fine too
    _write(tmp_path / "0002.mat", t=4, drop=("nframes", "dimensions", "bbox", "pose"))
    seq = read_penn_mat(tmp_path / "0002.mat")
    assert seq.n_frames == 4 and seq.size == (0, 0) and seq.view == ""


def test_integer_coordinates_are_accepted(tmp_path: Path):
    # some real files store x/y as uint8 or uint16
    _write(tmp_path / "0003.mat", t=2, x=np.full((2, 13), 200, np.uint8), y=np.full((2, 13), 600, np.uint16))
    seq = read_penn_mat(tmp_path / "0003.mat")
    assert (seq.keypoints[..., 0] == 200).all() and (seq.keypoints[..., 1] == 600).all()


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"drop": ("x",)}, "missing field(s) x"),
        ({"drop": ("visibility", "action")}, "action, visibility"),
        ({"y": np.zeros((4, 13))}, "'y' has shape (4, 13)"),
        ({"visibility": np.ones((5, 12), np.uint8)}, "'visibility' must have shape"),
        ({"x": np.zeros((5, 12)), "y": np.zeros((5, 12))}, "'x' must have shape (frames, 13)"),
        ({"t": 0}, "empty sequence"),
        ({"train": 0}, "'train' must be 1"),
        ({"action": ""}, "'action'"),
    ],
)
def test_read_penn_mat_errors_name_the_file(tmp_path: Path, kw: dict, needle: str):
    path = tmp_path / "0042.mat"
    _write(path, **kw)
    with pytest.raises(PoseFormatError) as e:
        read_penn_mat(path)
    assert str(path) in str(e.value)
    assert needle in str(e.value)


def test_corrupt_and_missing_files(tmp_path: Path):
    bad = tmp_path / "0099.mat"
    bad.write_bytes(os.urandom(64) + b"garbage" * 20)
    with pytest.raises(PoseFormatError, match="0099.mat"):
        read_penn_mat(bad)
    truncated = tmp_path / "0098.mat"
    _write(truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(PoseFormatError, match="0098.mat"):
        read_penn_mat(truncated)
    with pytest.raises(PoseFormatError, match="not found"):
        read_penn_mat(tmp_path / "nope.mat")


# --- load_penn_action


def test_load_penn_action_index_and_val_split(tmp_path: Path):
    made = _dataset(tmp_path)
    index, seqs = load_penn_action(tmp_path, val_fraction=0.25, seed=3)
    assert len(index) == len(made) == len(seqs) == 18
    assert index.classes == ["bowl", "pushup", "squat"]  # PENN_CLASSES order
    assert index.root == tmp_path.resolve()
    counts = index.counts()
    assert counts["test"] == {"bowl": 2, "pushup": 2, "squat": 2}
    assert counts["val"] == {"bowl": 1, "pushup": 1, "squat": 1}
    assert counts["train"] == {"bowl": 3, "pushup": 3, "squat": 3}
    for r in index.records:
        assert r.path.suffix == ".mat" and r.path.is_file() and r.path.stem == r.video_id
        assert seqs[r.video_id].action == r.label
        assert seqs[r.video_id].split == ("test" if r.split == "test" else "train")
    again, _ = load_penn_action(tmp_path / "labels", val_fraction=0.25, seed=3)
    assert [r.split for r in again.records] == [r.split for r in index.records]
    no_val, _ = load_penn_action(tmp_path, val_fraction=0.0)
    assert no_val.split_names == ["train", "test"]


def test_load_penn_action_limit_per_class(tmp_path: Path):
    _dataset(tmp_path)
    index, seqs = load_penn_action(tmp_path, val_fraction=0.0, limit_per_class=1)
    assert len(index) == 6 and set(seqs) == {r.video_id for r in index.records}
    assert all(v == 1 for c in index.counts().values() for v in c.values())
    with pytest.raises(IndexFormatError):
        load_penn_action(tmp_path, limit_per_class=0)


def test_load_penn_action_errors(tmp_path: Path):
    with pytest.raises(IndexFormatError, match="not a Penn Action folder"):
        load_penn_action(tmp_path)
    _dataset(tmp_path, classes=("squat",))
    (tmp_path / "labels" / "0100.mat").write_bytes(b"not a mat file at all")
    _write(tmp_path / "labels" / "0101.mat", drop=("x",))
    with pytest.raises(IndexFormatError) as e:
        load_penn_action(tmp_path)
    assert "0100.mat" in str(e.value) and "0101.mat" in str(e.value) and "2 unreadable" in str(e.value)


def test_class_without_train_videos_is_an_error(tmp_path: Path):
    _dataset(tmp_path, classes=("squat",))
    _write(tmp_path / "labels" / "0200.mat", action="bowl", train=-1)
    with pytest.raises(IndexFormatError, match="bowl"):
        load_penn_action(tmp_path)


# --- export_generic


def test_export_generic_round_trip(tmp_path: Path):
    root = tmp_path / "penn"
    made = _dataset(root)
    (root / "labels" / "0500.mat").write_bytes(b"\x00garbage\xff" * 10)
    _write(root / "labels" / "0501.mat", x=np.zeros((3, 13)), y=np.zeros((4, 13)))
    out = export_generic(root, tmp_path / "generic", val_fraction=0.25, seed=1)
    assert out == tmp_path / "generic"

    skipped = json.loads((out / "skipped.json").read_text())
    assert set(skipped) == {"0500.mat", "0501.mat"}
    assert "0501.mat" in skipped["0501.mat"] and "shape" in skipped["0501.mat"]

    rows = list(csv.DictReader((out / "annotations.csv").open()))
    assert list(rows[0]) == ["video_id", "label", "split", "view"] and len(rows) == len(made)
    assert all(r["view"] == made[r["video_id"]]["pose"] for r in rows)  # each video's camera view
    assert {r["view"] for r in rows} == {"front", "back", "left"}
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    assert not list(out.rglob("*.tmp"))

    index = load_index(out)
    assert len(index) == len(made) and index.split_names == ["train", "val", "test"]
    src = AnnotationPoseSource(out)
    assert layout_name(src.skeleton) == "penn-13"
    for rec in index.records:
        seq = read_penn_mat(root / "labels" / f"{rec.video_id}.mat")
        assert rec.label == seq.action
        got = src.poses(rec, np.arange(seq.n_frames + 2))
        np.testing.assert_array_equal(got.keypoints[: seq.n_frames], seq.keypoints)
        np.testing.assert_array_equal(got.scores[: seq.n_frames], seq.scores)
        assert (got.scores[seq.n_frames:] == 0).all()
        with np.load(out / "poses" / f"{rec.video_id}.npz") as f:
            assert tuple(f["size"]) == seq.size

    # a clean re-export removes the stale skipped.json
    (root / "labels" / "0500.mat").unlink()
    (root / "labels" / "0501.mat").unlink()
    export_generic(root, out)
    assert not (out / "skipped.json").exists()


def test_export_generic_with_nothing_readable(tmp_path: Path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "0001.mat").write_bytes(b"junk")
    with pytest.raises(IndexFormatError, match="no readable"):
        export_generic(tmp_path, tmp_path / "out")


# --- PennPoseSource


def test_penn_pose_source(tmp_path: Path):
    _dataset(tmp_path)
    index, seqs = load_penn_action(tmp_path)
    src = PennPoseSource(tmp_path)
    assert src.name == "penn-action" and layout_name(src.skeleton) == "penn-13"
    rec = index.records[0]
    seq = seqs[rec.video_id]
    got = src.poses(rec, np.array([-1, 0, seq.n_frames - 1, seq.n_frames]))
    assert got.keypoints.shape == (4, 13, 2) and got.scores.shape == (4, 13)
    np.testing.assert_array_equal(got.keypoints[1], seq.keypoints[0])
    np.testing.assert_array_equal(got.scores[2], seq.scores[-1])
    assert (got.scores[[0, 3]] == 0).all()
    assert src.sequence(rec) is src.sequence(rec)  # cached

    # a record that does not point at the .mat file is found by its id
    from dance.data.index import VideoRecord

    other = VideoRecord(rec.video_id, tmp_path / "elsewhere.mp4", rec.label, rec.split)
    np.testing.assert_array_equal(src.poses(other, np.array([0])).keypoints[0], seq.keypoints[0])

    fp = src.fingerprint()
    assert fp == PennPoseSource(tmp_path / "labels").fingerprint()
    _write(tmp_path / "labels" / "0999.mat", t=2)
    assert PennPoseSource(tmp_path).fingerprint() != fp
    with pytest.raises(PoseFormatError, match="not found"):
        src.poses(VideoRecord("7777", tmp_path / "x.mp4", "squat", "train"), np.array([0]))


# --- real data


@pytest.mark.slow
def test_real_penn_action_labels():
    if not PENN_LABELS.is_dir():
        pytest.skip(f"real Penn Action labels not available at {PENN_LABELS}")
    from scipy.io import loadmat

    index, seqs = load_penn_action(PENN_LABELS.parent)
    assert len(index) == len(seqs) == 2326
    counts = {split: sum(per.values()) for split, per in index.counts().items()}
    assert counts["train"] + counts["val"] == 1258 and counts["test"] == 1068
    assert index.classes == list(PENN_CLASSES) and len(PENN_CLASSES) == 15
    assert {s.action for s in seqs.values()} == set(PENN_CLASSES)
    # The frame count always comes from x.shape[0]. In this copy of the labels the stored nframes agrees with
    # x.shape[0] in every file (0 of 2326 differ): nframes is uint8 only in files with <= 255 frames (uint16
    # otherwise), so it never wraps here; the rule guards copies where it does.
    stored_uint8 = 0
    differ = 0
    for vid, seq in seqs.items():
        d = loadmat(str(PENN_LABELS / f"{vid}.mat"), variable_names=["x", "nframes"])
        assert seq.n_frames == d["x"].shape[0] == seq.keypoints.shape[0]
        stored_uint8 += d["nframes"].dtype == np.uint8
        differ += int(d["nframes"].ravel()[0]) != d["x"].shape[0]
    assert stored_uint8 > 0
    assert differ == 0
    assert all(s.size[0] > 0 and s.size[1] > 0 for s in seqs.values())
    assert all(np.isfinite(s.keypoints).all() for s in seqs.values())
    assert 0 < sum(float((s.scores == 0).sum()) for s in seqs.values())
