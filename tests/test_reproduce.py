"""Explaining a video of a finished run from its file reproduces what the run stored for it (issue 12 item 1).

``dance explain`` runs the per-video steps the stages ran (:mod:`dance.motion.clips`, :func:`dance.data.video.
read_clip`, the run's backbone) with the settings each stage ran with, so for a video of the run's own dataset the
key clips, the clip poses, their filters and the features are the stored ones exactly (a backbone's forward passes
see batches of one fixed size, so a video encoded alone gets the bits it got in the features stage's batch:
:mod:`dance.encoders.batches`). Motion labels are the stored ones for videos outside the training split (nearest
centroid, as the motion stage labels them); a training video's clips were labelled by the clustering itself, so
there the test checks the clips the labels are made from.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dance.explain.video import explain_video
from dance.motion.clips import clip_vectors, label_clips
from dance.run_view import RunView

# the runs: the rgb and pose fixtures of tests/conftest.py

def _check(view: RunView, row: int, path: Path, tmp_path: Path) -> None:
    rec = view.index.records[row]
    result = explain_video(path, view.root, tmp_path / rec.video_id, k=2, pose_source=None)
    # features: the stored row, bit for bit
    assert np.array_equal(result.features, view.features["x"][row])
    # key clips: the keyclips stage's centres
    assert result.keyframes == view.keyclips["videos"][rec.video_id]["centres"]
    # the clips' poses, filters and motion concepts
    clips = view.clip_rows[row]
    stored_concepts = view.motion["clip_concept"][clips]
    names = view.motion_names
    if rec.split == "train":  # labelled by the clustering: the same clips pass the filters
        assert [c >= 0 for c in result.clip_concepts] == [bool(c >= 0) for c in stored_concepts]
    else:  # labelled by the nearest centroid, as the motion stage labels them
        assert result.clip_concepts == [int(c) for c in stored_concepts]
        stored = [names[j] for j in np.flatnonzero(view.motion["labels"][row])]
        assert result.motion_labels == stored


def _rows(view: RunView) -> list[int]:
    """The first training video and the first test video with stored motion labels."""
    has = view.motion["has_label"]
    recs = view.index.records
    return [next(i for i, r in enumerate(recs) if r.split == split and has[i]) for split in ("train", "test")]


def test_explaining_a_video_of_an_rgb_run_reproduces_its_stored_results(rgb: Path, tmp_path: Path) -> None:
    view = RunView(rgb)
    assert view.settings.features.backbone == "random-3dconv"
    for row in _rows(view):
        _check(view, row, view.index.records[row].path, tmp_path)


def test_explaining_a_sample_of_a_pose_run_reproduces_its_stored_results(pose: Path, tmp_path: Path) -> None:
    view = RunView(pose)
    folder = Path(view.settings.data.path).parent / "poses"
    for row in _rows(view):
        _check(view, row, folder / f"{view.index.records[row].video_id}.npz", tmp_path)


def test_the_stored_clips_get_their_stored_labels(rgb: Path) -> None:
    """label_clips on the clips the poses stage stored gives the motion stage's labels outside training."""
    from dance.motion.clips import filter_settings
    from dance.motion.poses import PoseSequence

    view = RunView(rgb)
    poses, motion = view.poses, view.motion
    split = np.array([view.index.records[v].split for v in poses["clip_video"]])
    held = np.flatnonzero(split != "train")
    clips = [PoseSequence(poses["keypoints"][c], poses["scores"][c]) for c in held]
    got = label_clips(clips, filter_settings(view.settings.motion), motion["centroids"])
    np.testing.assert_array_equal(got, motion["clip_concept"][held])
    medoids = clip_vectors(motion["medoid_keypoints"]).reshape(motion["medoids"].shape)
    np.testing.assert_array_equal(medoids, motion["medoids"])


def test_the_sanity_check_labels_a_video_as_the_run_did(rgb: Path) -> None:
    """The reversed-video check labels the original through the same steps: a test video's stored labels."""
    from dance.explain.sanity import MotionLabeller
    from dance.motion.clips import keyframe_input

    view = RunView(rgb)
    labeller = MotionLabeller(view, view.settings)
    row = _rows(view)[1]
    rec = view.index.records[row]
    given = keyframe_input(rec.path, view.settings.keyclips, lambda: labeller.source.sequence(rec))
    assert labeller.from_frames(rec, given.frames, False) == set(np.flatnonzero(view.motion["labels"][row]).tolist())


def test_a_backbone_encodes_a_video_alone_as_in_any_batch() -> None:
    """The features of a video do not depend on the videos encoded with it, down to the last bit."""
    from dance.encoders.pose_encoder import PoseEncoder
    from dance.encoders.random3d import Random3DConv
    from dance.motion.poses import PoseSequence

    rng = np.random.default_rng(0)
    backbone = Random3DConv(n_frames=6, size=48)
    videos = [rng.integers(0, 256, (6, 48, 48, 3), dtype=np.uint8) for _ in range(11)]  # a batch and a part
    together = backbone.encode(videos)
    assert np.array_equal(together[3:9], backbone.encode(videos[3:9]))
    assert all(np.array_equal(together[i], backbone.encode([v])[0]) for i, v in enumerate(videos))

    encoder = PoseEncoder(["head", "left_hand", "right_hand"], n_classes=2, length=16, edges=[(0, 1), (0, 2)])
    seqs = [PoseSequence(rng.normal(50, 10, (20 + i, 3, 2)).astype(np.float32), np.ones((20 + i, 3), np.float32))
            for i in range(40)]
    together = encoder.encode_poses(seqs)
    assert all(np.array_equal(together[i], encoder.encode_poses([s])[0]) for i, s in enumerate(seqs))
    assert np.array_equal(encoder.predict_poses(seqs)[5:7], encoder.predict_poses(seqs[5:7]))
