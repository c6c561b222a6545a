"""Explain one new video with a finished run: decode → key clips → poses → features → prediction → concepts.

The video goes through the steps the pipeline's stages ran, as the same functions with the settings each stage
ran with (read through :class:`dance.run_view.RunView`): key clips from the signal ``keyclips.signal`` names
(pixel differences of the frames, or pose motion; :mod:`dance.motion.clips`) cut at the keyclips stage's clip
length, clip filters, normalisation and the nearest motion-concept centroid (its motion labels), and features as
the features stage made them (:func:`dance.data.video.read_clip` for a video backbone, the whole pose sequence for
a pose backbone). So a video of the run's own dataset explained from its file gets the run's stored features and
key clips, and, outside the training split, its stored motion labels (training clips are labelled by clustering).

The video's poses come from a pose estimator (MediaPipe by default) mapped onto the run's skeleton layout, so a
model trained on one layout (e.g. Penn Action's 13 joints) explains videos whose poses come from another. A pose
source that reads files instead (``annotations``: ``poses/<video name>.npz`` of a generic pose folder;
``penn-action``: ``labels/<id>.mat``) reads the video's own file, from ``pose_path`` or the run's ``poses.path``;
with such a source the "video" may also be a pose-only sample (no frames: its name finds its pose file).
For each motion concept shown, an animation puts the concept's medoid beside the video's key clip that matches it
best.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dance.data.index import VideoRecord
from dance.data.video import is_video, read_clip, read_video
from dance.encoders.registry import backbone_entry, load_run_backbone
from dance.errors import DanceError, StageError
from dance.explain.contributions import Explanation, explain
from dance.motion.clips import (
    clip_vectors,
    filter_settings,
    frames_of,
    key_clip_poses,
    keyframe_input,
    label_clips,
)
from dance.motion.discovery import unit_rows
from dance.motion.keyframes import uses_pixels
from dance.motion.poses import POSE_SOURCES, PoseSequence, make_pose_source, pose_folder
from dance.motion.render import save_animation
from dance.motion.skeletons import mapping
from dance.run_view import RunView
from dance.runs import atomic_write_json


@dataclass
class VideoExplanation:
    video: Path
    explanation: Explanation
    keyframes: list[int]  # the key-clip centres (keyframes, thinned to keyclips.n_clips)
    missing_joints: list[str]
    person_frames: float  # fraction of the frames poses were estimated on (pose_frames) with a detected person
    animations: dict[str, Path] = field(default_factory=dict)  # concept name → GIF
    features: np.ndarray | None = None  # (D,) the backbone features the model saw
    clip_concepts: list[int] = field(default_factory=list)  # each key clip's motion concept (-1: filtered out)
    motion_labels: list[str] = field(default_factory=list)  # the motion concepts of the video's key clips (Eq. 2)
    pose_frames: str = "all"  # poses estimated on "all" frames, or only inside the "key clips"


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


def explain_video(video: Path, run: Path, out: Path, k: int = 3, pose_source: str | None = "mediapipe",
                  pose_path: Path | None = None) -> VideoExplanation:
    """Explain ``video`` with the finished run ``run``, writing animations and ``explanation.json`` to ``out``.

    ``pose_source``: ``mediapipe`` (estimated from the frames), ``annotations`` / ``penn-action`` (the video's
    own pose file, in ``pose_path`` or the run's ``poses.path``), or None for the run's own ``poses.source``.
    """
    run = Path(run)
    video = Path(video)
    view = RunView(run)
    settings = view.settings
    model = view.trained_model
    skeleton = view.skeleton
    motion = view.motion
    motion_names = view.motion_names

    estimator = _pose_source(pose_source or settings.poses.source, settings, pose_path)
    # a file per video is found by the video's name (its stem, or its folder's name for frame folders)
    record = VideoRecord(video_id=video.stem, path=video, label="", split="test")
    feat = settings.features
    poses = backbone_entry(feat.backbone).input == "poses"
    m = mapping(estimator.skeleton, skeleton)
    if is_video(video) and not poses and uses_pixels(settings.keyclips.signal, video):
        # the fast path: key clips from the frames' pixel differences, so poses are needed only inside the key-clip
        # windows, estimated as the poses stage estimated them (one pass, a fresh graph per clip)
        clips = keyframe_input(video, settings.keyclips, lambda: None).key_clips(settings.keyclips)  # type: ignore
        windows = clips.windows(view.clip_len)
        raw_clips = key_clip_poses(estimator, record, windows)
        clip_poses = [PoseSequence(*m.apply(c.keypoints, c.scores)) for c in raw_clips]
        raw_scores = np.concatenate([c.scores for c in raw_clips]) if raw_clips else np.zeros((0, 1), np.float32)
        pose_frames = "key clips"
    else:
        if is_video(video) or not hasattr(estimator, "sequence"):
            frames = read_video(video)
            raw = (estimator.estimate(frames) if hasattr(estimator, "estimate") else
                   estimator.poses(record, np.arange(len(frames))))
        else:  # a pose-only sample: its pose file is all there is
            raw = estimator.sequence(record)
            if len(raw.keypoints) == 0:
                raise DanceError(f"{video}: the pose file has no frames")
        seq = PoseSequence(*m.apply(raw.keypoints, raw.scores))
        raw_scores = raw.scores
        pose_frames = "all"
        # key clips as the keyclips stage cut them (its signal, settings and clip length)
        clips = keyframe_input(video, settings.keyclips, lambda: seq).key_clips(settings.keyclips)
        windows = clips.windows(view.clip_len)
        clip_poses = [frames_of(seq, w) for w in windows]
    person = float((raw_scores.mean(axis=1) >= settings.motion.min_frame_conf).mean()) if len(raw_scores) else 0.0
    concepts = label_clips(clip_poses, filter_settings(settings.motion), motion["centroids"])

    if poses and person == 0.0:
        raise DanceError(f"no person found in any frame of {video}: the pose backbone has nothing to encode")
    # the run's backbone: a pose backbone's trained weights, or a video backbone's weights, frame count and size
    backbone = load_run_backbone(feat, view.stage_dir("features"), len(model.classes_))
    x = (backbone.encode_poses([seq]) if poses else  # a pose backbone took the path with the whole sequence
         backbone.encode([read_clip(video, backbone.n_frames, backbone.size)]))
    explanation = explain(model, x, k=k)[0]

    result = VideoExplanation(video, explanation, [int(c) for c in clips.centres], m.missing, person,
                              features=np.asarray(x[0]), pose_frames=pose_frames,
                              clip_concepts=[int(j) for j in concepts],
                              motion_labels=[motion_names[j] for j in sorted({int(j) for j in concepts if j >= 0})])
    # for each motion concept shown, the video's key clip that matches it best
    similarity = unit_rows(clip_vectors(np.stack([c.keypoints for c in clip_poses])).astype(np.float64)) @ \
        unit_rows(motion["centroids"].astype(np.float64)).T
    out.mkdir(parents=True, exist_ok=True)
    for c in explanation.top.get("motion", []):
        j = motion_names.index(c.name)
        best = int(np.argmax(similarity[:, j]))
        w = windows[best]
        result.animations[c.name] = save_animation(
            out / f"{c.name}.gif", [motion["medoid_keypoints"][j], clip_poses[best].keypoints], skeleton,
            [f"{c.name} (medoid)", f"video frames {w[0]}-{w[-1]}"], scores=[None, clip_poses[best].scores])
    atomic_write_json(out / "explanation.json", {
        "video": str(video), "run": str(run), "predicted": explanation.predicted,
        "probabilities": explanation.probabilities, "type_shares": explanation.type_shares,
        "top": {t: [vars(c) for c in cs] for t, cs in explanation.top.items()},
        "keyframes": result.keyframes, "motion_labels": result.motion_labels,
        "person_frames": person, "pose_frames": pose_frames, "missing_joints": m.missing,
        "animations": {k: str(v) for k, v in result.animations.items()}})
    return result
