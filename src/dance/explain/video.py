"""Explain one new video with a finished run: decode → key clips → poses → features → prediction → concepts.

The video's poses come from a pose estimator (MediaPipe by default) mapped onto the run's skeleton layout, so a
model trained on one layout (e.g. Penn Action's 13 joints) explains videos whose poses come from another. A pose
source that reads files instead (``annotations``: ``poses/<video name>.npz`` of a generic pose folder;
``penn-action``: ``labels/<id>.mat``) reads the video's own file, from ``pose_path`` or the run's ``poses.path``.
For each motion concept shown, an animation puts the concept's medoid beside the video's key clip that matches it
best. The run is read through :class:`dance.run_view.RunView`: key clips are cut with the settings and the clip
length the keyclips stage used, poses filtered with the motion stage's settings, features made as the features
stage made them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dance.data.index import VideoRecord
from dance.data.video import read_video, sample_frames
from dance.encoders.registry import backbone_entry, load_run_backbone
from dance.errors import DanceError, StageError
from dance.explain.contributions import Explanation, explain
from dance.motion.keyframes import choose_centres, clip_window, difference_signal, find_keyframes
from dance.motion.poses import POSE_SOURCES, PoseSequence, make_pose_source, pose_folder
from dance.motion.render import save_animation
from dance.motion.sequences import normalise
from dance.motion.skeletons import mapping
from dance.run_view import RunView
from dance.runs import atomic_write_json


@dataclass
class VideoExplanation:
    video: Path
    explanation: Explanation
    keyframes: list[int]
    missing_joints: list[str]
    person_frames: float  # fraction of frames with a detected person
    animations: dict[str, Path] = field(default_factory=dict)  # concept name → GIF


def _resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR)) for f in frames])


def _pose_source(name: str, settings, pose_path: Path | None):  # noqa: ANN001, ANN202 - Settings, a PoseSource
    """The pose source ``name``; a file-based one gets its folder from ``pose_path``, else from the run's
    settings (``poses.path``, or the dataset when it is a pose folder)."""
    problem = POSE_SOURCES.check(name)
    if problem:
        raise StageError(f"--poses {name}: {problem}")
    entry = POSE_SOURCES.get(name)
    if not entry.reads:
        return make_pose_source(name)
    path = pose_path if pose_path is not None else settings.poses.path if settings.poses.source == name else None
    folder = pose_folder(name, path, settings.data.path)
    if folder is None:
        raise StageError(f"--poses {name} reads the video's poses from {entry.reads}, and the run has none "
                         f"(its poses.source is {settings.poses.source}): give it with --pose-path")
    return make_pose_source(name, folder)


def explain_video(video: Path, run: Path, out: Path, k: int = 3, pose_source: str = "mediapipe",
                  pose_path: Path | None = None) -> VideoExplanation:
    """Explain ``video`` with the finished run ``run``, writing animations and ``explanation.json`` to ``out``.

    ``pose_source``: ``mediapipe`` (estimated from the frames), or ``annotations`` / ``penn-action`` (the video's
    own pose file, in ``pose_path`` or the run's ``poses.path``).
    """
    run = Path(run)
    view = RunView(run)
    settings = view.settings
    model = view.trained_model
    skeleton = view.skeleton
    motion = view.motion
    motion_names = view.motion_names

    frames = read_video(video)
    small = _resize_frames(frames, settings.keyclips.size)
    keys = find_keyframes(difference_signal(small, settings.keyclips.blur_sigma), settings.keyclips.threshold,
                          settings.keyclips.min_distance, settings.keyclips.baseline_degree)
    centres = choose_centres(keys, len(frames), settings.keyclips.n_clips)

    estimator = _pose_source(pose_source, settings, pose_path)
    if hasattr(estimator, "estimate"):
        raw = estimator.estimate(frames)
    else:  # a file per video, found by the video's name (its stem, or its folder's name for frame folders)
        record = VideoRecord(video_id=Path(video).stem, path=Path(video), label="", split="test")
        raw = estimator.poses(record, np.arange(len(frames)))
    m = mapping(estimator.skeleton, skeleton)
    kp, sc = m.apply(raw.keypoints, raw.scores)
    seq = PoseSequence(kp, sc)
    person = float((raw.scores.mean(axis=1) >= settings.motion.min_frame_conf).mean())

    feat = settings.features
    poses = backbone_entry(feat.backbone).input == "poses"
    if poses and person == 0.0:
        raise DanceError(f"no person found in any frame of {video}: the pose backbone has nothing to encode")
    # the run's backbone: a pose backbone's trained weights, or a video backbone's weights, frame count and size
    backbone = load_run_backbone(feat, view.stage_dir("features"), len(model.classes_))
    x = (backbone.encode_poses([seq]) if poses else
         backbone.encode([sample_frames(_resize_frames(frames, backbone.size), backbone.n_frames)]))
    explanation = explain(model, x, k=k)[0]

    # the video's key clips, for showing which part of the video matches each motion concept
    windows = [clip_window(int(c), len(frames), view.clip_len) for c in centres]
    clips = [kp[w] for w in windows]
    flat = np.stack([normalise(c).reshape(-1) for c in clips])
    flat = flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-12)
    cents = motion["centroids"] / np.maximum(np.linalg.norm(motion["centroids"], axis=1, keepdims=True), 1e-12)
    result = VideoExplanation(Path(video), explanation, [int(c) for c in centres], m.missing, person)
    out.mkdir(parents=True, exist_ok=True)
    for c in explanation.top.get("motion", []):
        j = motion_names.index(c.name)
        best = int(np.argmax(flat @ cents[j]))
        w = windows[best]
        result.animations[c.name] = save_animation(
            out / f"{c.name}.gif", [motion["medoid_keypoints"][j], clips[best]], skeleton,
            [f"{c.name} (medoid)", f"video frames {w[0]}-{w[-1]}"], scores=[None, sc[w]])
    atomic_write_json(out / "explanation.json", {
        "video": str(video), "run": str(run), "predicted": explanation.predicted,
        "probabilities": explanation.probabilities, "type_shares": explanation.type_shares,
        "top": {t: [vars(c) for c in cs] for t, cs in explanation.top.items()},
        "keyframes": result.keyframes, "person_frames": person, "missing_joints": m.missing,
        "animations": {k: str(v) for k, v in result.animations.items()}})
    return result
