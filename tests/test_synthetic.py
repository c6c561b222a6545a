"""Synthetic dataset: determinism, file layout, pose ground truth, causal rules, motion primitives."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from dance.data.synthetic import CLASSES, generate, render_video, sample_spec
from dance.data.synthetic.body import EDGES, JOINTS, MOTIONS, forward_kinematics, motion_pose, pose_sequence
from dance.data.synthetic.generator import NUISANCE_MOTIONS, _assign
from dance.data.synthetic.scene import OBJECTS, SCENES
from dance.data.video import read_video, video_info
from dance.errors import ConfigError

N_VIDEOS, N_FRAMES, SIZE, SEED = 12, 16, 64, 3


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth") / "data"
    calls: list[tuple[int, int]] = []
    summary = generate(
        out,
        n_videos=N_VIDEOS,
        seed=SEED,
        size=SIZE,
        n_frames=N_FRAMES,
        fps=10,
        progress=lambda i, n: calls.append((i, n)),
    )
    assert calls == [(i, N_VIDEOS) for i in range(1, N_VIDEOS + 1)]
    return out, summary


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(dataset: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = dataset
    again = tmp_path / "again"
    generate(again, n_videos=N_VIDEOS, seed=SEED, size=SIZE, n_frames=N_FRAMES, fps=10)
    first, second = _all_files(out), _all_files(again)
    assert sorted(first) == sorted(second)
    assert len([k for k in first if k.endswith(".mp4")]) == N_VIDEOS
    assert len([k for k in first if k.endswith(".npz")]) == N_VIDEOS
    for name in first:
        assert first[name] == second[name], name
    assert not [k for k in first if ".tmp" in k]


def test_other_seed_differs(dataset: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = dataset
    other = tmp_path / "other"
    generate(other, n_videos=N_VIDEOS, seed=SEED + 1, size=SIZE, n_frames=N_FRAMES, fps=10)
    assert (out / "videos" / "v00001.mp4").read_bytes() != (other / "videos" / "v00001.mp4").read_bytes()


def test_annotations_layout_and_balance(dataset: tuple[Path, dict]) -> None:
    out, summary = dataset
    header, rows = _read_csv(out / "annotations.csv")
    assert header == ["path", "label", "split"]
    assert [r["path"] for r in rows] == [f"videos/v{i:05d}.mp4" for i in range(1, N_VIDEOS + 1)]
    assert Counter(r["label"] for r in rows) == {c.name: 1 for c in CLASSES}
    assert {r["split"] for r in rows} <= {"train", "val", "test"}
    assert all((out / r["path"]).is_file() for r in rows)
    pheader, prow = _read_csv(out / "poses_gt" / "annotations.csv")
    assert pheader == ["video_id", "label", "split"]
    assert [(p["video_id"], p["label"], p["split"]) for p in prow] == [
        (Path(r["path"]).stem, r["label"], r["split"]) for r in rows
    ]
    assert sum(sum(c.values()) for c in summary["counts"].values()) == N_VIDEOS
    assert summary["splits"]["train"] == sum(r["split"] == "train" for r in rows)
    assert (out / "README.txt").read_text().strip()


def test_splits_are_balanced_and_stratified() -> None:
    labels, splits = _assign(600, 0, (0.6, 0.15, 0.25))
    per_class = Counter(labels)
    assert set(per_class.values()) == {50}
    for name in per_class:
        c = Counter(s for lab, s in zip(labels, splits, strict=True) if lab == name)
        assert c["train"] == 30 and c["val"] in (7, 8) and c["test"] in (12, 13)
    assert labels != [c.name for c in CLASSES] * 50  # shuffled


def test_pose_files_match_videos(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    skeleton = json.loads((out / "poses_gt" / "skeleton.json").read_text())
    assert skeleton["joints"] == list(JOINTS) and len(JOINTS) == 15
    assert skeleton["edges"] == [list(e) for e in EDGES]
    assert all(0 <= i < 15 and 0 <= j < 15 for i, j in skeleton["edges"])
    for i in (1, 5, 12):
        vid = f"v{i:05d}"
        with np.load(out / "poses_gt" / "poses" / f"{vid}.npz") as z:
            kp, scores, size = z["keypoints"], z["scores"], z["size"]
        info = video_info(out / "videos" / f"{vid}.mp4")
        frames = read_video(out / "videos" / f"{vid}.mp4")
        assert info["frames"] == frames.shape[0] == N_FRAMES
        assert kp.shape == (N_FRAMES, 15, 2) and kp.dtype == np.float32
        assert scores.shape == (N_FRAMES, 15) and scores.dtype == np.float32
        assert tuple(size) == (SIZE, SIZE) == frames.shape[1:3]
        inside = (kp >= 0).all(-1) & (kp <= SIZE - 1).all(-1)
        assert np.array_equal(scores, inside.astype(np.float32))
        assert scores.mean() > 0.95


def test_keypoints_lie_on_the_drawn_figure() -> None:
    """Rendered with and without the figure (no noise): every joint pixel is changed by the figure."""
    for k, cls in enumerate(CLASSES):
        spec = replace(sample_spec("t", cls.name, 7, k, 96, 12), object=None, distractor=None)
        with_person, kp, scores = render_video(spec, noise=False)
        background, kp2, _ = render_video(spec, draw_person=False, noise=False)
        assert np.array_equal(kp, kp2)
        assert (background == background[0]).all()  # static background
        t_idx, j_idx = np.nonzero(scores > 0)
        xs = np.rint(kp[t_idx, j_idx, 0]).astype(int)
        ys = np.rint(kp[t_idx, j_idx, 1]).astype(int)
        diff = np.abs(with_person[t_idx, ys, xs].astype(int) - background[t_idx, ys, xs].astype(int)).sum(-1)
        assert (diff > 0).all(), cls.name
        # and the figure stays near the joints: far corners untouched
        assert np.array_equal(with_person[:, :4, :4], background[:, :4, :4])


def test_keypoints_match_decoded_video(dataset: tuple[Path, dict]) -> None:
    """Pose files equal a re-render from the per-video seed; the decoded video shows the figure there."""
    out, _ = dataset
    _, rows = _read_csv(out / "poses_gt" / "annotations.csv")
    for index in (0, 4, 9):
        row = rows[index]
        spec = sample_spec(row["video_id"], row["label"], SEED, index, SIZE, N_FRAMES)
        _, kp, _ = render_video(spec)
        with np.load(out / "poses_gt" / "poses" / f"{row['video_id']}.npz") as z:
            assert np.array_equal(z["keypoints"], kp)
        background, _, _ = render_video(spec, draw_person=False, noise=False)
        clean, _, _ = render_video(spec, noise=False)
        figure = (clean != background).any(-1)
        video = read_video(out / "videos" / f"{row['video_id']}.mp4").astype(int)
        xs = np.clip(np.rint(kp[..., 0]).astype(int), 0, SIZE - 1)
        ys = np.clip(np.rint(kp[..., 1]).astype(int), 0, SIZE - 1)
        t = np.arange(N_FRAMES)[:, None]
        at_joints = np.abs(video[t, ys, xs] - background[t, ys, xs]).sum(-1)
        elsewhere = np.abs(video - background).sum(-1)[~figure]
        assert np.median(at_joints) > 60 and (at_joints > 25).mean() > 0.85
        assert np.median(elsewhere) < 25 and np.median(at_joints) > 4 * np.median(elsewhere)


def test_causes_consistent_with_context_labels(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    causes = json.loads((out / "causes.json").read_text())
    concepts = json.loads((out / "concepts.json").read_text())
    assert concepts == {"object": list(OBJECTS), "scene": list(SCENES), "motion_primitives": list(MOTIONS)}
    assert len(OBJECTS) == 7 and len(SCENES) == 6 and len(MOTIONS) == 8
    classes = causes["classes"]
    assert list(classes) == [c.name for c in CLASSES]
    assert causes["seed"] == SEED and causes["settings"]["n_frames"] == N_FRAMES
    decisive_values = {(r["decisive"], r["value"]) for r in classes.values()}
    assert len(decisive_values) == 12  # unique per class
    for rule in classes.values():
        for ctype, pool in rule["nuisance"].items():
            assert not {(ctype, v) for v in pool} & decisive_values  # decisive values are never nuisance
            assert (pool == []) == (ctype == rule["decisive"])
    for ctype, pairs in causes["pairs"].items():
        assert len(pairs) == 6
        for a, b in pairs:
            assert classes[a]["decisive"] == classes[b]["decisive"] == ctype
            assert classes[a]["nuisance"] == classes[b]["nuisance"]

    header, ctx = _read_csv(out / "context_labels.csv")
    assert header == ["video_id", "object", "scene"]
    _, ann = _read_csv(out / "poses_gt" / "annotations.csv")
    assert [c["video_id"] for c in ctx] == [a["video_id"] for a in ann]
    for c, a in zip(ctx, ann, strict=True):
        rule = classes[a["label"]]
        objs = c["object"].split(";") if c["object"] else []
        assert objs == sorted(objs) and set(objs) <= set(OBJECTS) and c["scene"] in SCENES
        if rule["decisive"] == "object":
            assert rule["value"] in objs
        elif rule["decisive"] == "scene":
            assert c["scene"] == rule["value"]
        if rule["decisive"] != "scene":
            assert c["scene"] in rule["nuisance"]["scene"]


def test_sampled_specs_follow_the_rules() -> None:
    """Many specs (no rendering): decisive value always present, never outside its class."""
    seen: dict[str, Counter] = {t: Counter() for t in ("motion", "object", "scene")}
    for i in range(1200):
        cls = CLASSES[i % 12]
        spec = sample_spec("x", cls.name, 11, i, 64, 4)
        values = {"motion": {spec.motion}, "object": set(spec.objects), "scene": {spec.scene}}
        assert getattr(spec, cls.decisive) == cls.value
        for other in CLASSES:
            if other.name != cls.name:
                assert other.value not in values[other.decisive], (cls.name, other.name)
        if cls.decisive != "motion":
            assert spec.motion in NUISANCE_MOTIONS
        assert spec.distractor is None or spec.distractor in ("cone", "bottle", "bag")
        for t, vs in values.items():
            seen[t].update(vs)
    assert set(seen["motion"]) == set(MOTIONS) and set(seen["object"]) == set(OBJECTS)
    assert set(seen["scene"]) == set(SCENES)


def test_motion_primitives_are_periodic_grounded_and_distinct() -> None:
    phases = np.arange(32) / 32
    seqs = {}
    for name in MOTIONS:
        a, b = forward_kinematics(motion_pose(name, 0.2)), forward_kinematics(motion_pose(name, 1.2))
        assert np.allclose(a, b)
        seq = np.stack([forward_kinematics(motion_pose(name, p)) for p in phases])
        lift = np.array([motion_pose(name, p).lift for p in phases])
        ankles = seq[:, [JOINTS.index("r_ankle"), JOINTS.index("l_ankle")], 1].max(1)
        assert np.allclose(ankles, -lift)  # lowest foot on the ground (y = 0) unless jumping
        assert seq[..., 1].min() > -1.3 and np.ptp(seq, axis=0).max() > 0.1  # it moves
        seqs[name] = seq - seq[:, JOINTS.index("pelvis") : JOINTS.index("pelvis") + 1]
    for a, b in combinations(MOTIONS, 2):
        # smallest mean joint distance over all cyclic phase shifts (phase is random per video)
        dist = min(np.linalg.norm(seqs[a] - np.roll(seqs[b], k, axis=0), axis=-1).mean() for k in range(32))
        assert dist > 0.03, (a, b, dist)
    seq = pose_sequence("squat", 20, period=10.0)
    assert seq.shape == (20, 15, 2) and np.allclose(seq[0], seq[10])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_videos": 0},
        {"size": 8},
        {"n_frames": 0},
        {"fps": 0},
        {"split_fractions": (0.5, 0.5, 0.5)},
        {"split_fractions": (1.2, -0.1, -0.1)},
    ],
)
def test_invalid_settings(tmp_path: Path, kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        generate(tmp_path / "x", **kwargs)
