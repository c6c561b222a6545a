"""One video's key clips and motion labels: the per-video steps of the ``keyclips``, ``poses`` and ``motion`` stages.

They take plain settings (``keyclips``, ``motion``) and arrays, never a pipeline context, so that the stages,
``dance explain``, the reversed-video sanity check and the viewer all run the same code; a video played backwards
is just a reversed input (:meth:`KeyframeInput.reversed`, a reversed pose sequence).

* :func:`keyframe_input`: what keyframes are found in, by ``keyclips.signal`` (:func:`~dance.motion.keyframes.
  uses_pixels`): the grey frames at ``keyclips.size``, scaled by the decoder (pixel differences), or the video's
  pose sequence (pose motion);
* :meth:`KeyframeInput.key_clips` → :class:`KeyClips`: keyframes, clip centres and each clip's frame window;
* :func:`key_clip_poses`: the poses of a video's key clips from a pose source;
* :func:`clip_status` / :func:`clip_vectors`: the quality filters and the normalised, flattened clips;
* :func:`label_clips`: filters + normalisation + the nearest motion-concept centroid of each clip, and
  :func:`video_concepts`, the video's motion labels (paper Eq. 2) from its clips' concepts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dance.config import KeyclipSettings, MotionSettings
from dance.data.index import VideoRecord
from dance.data.video import read_video
from dance.motion.discovery import nearest_centroid
from dance.motion.keyframes import (
    choose_centres,
    clip_window,
    difference_signal,
    find_keyframes,
    pose_motion_signal,
    uses_pixels,
)
from dance.motion.poses import PoseSequence, PoseSource
from dance.motion.sequences import OK, FilterSettings, check_clip, normalise


@dataclass(frozen=True)
class KeyClips:
    """Keyframes and key-clip centres of one video of ``n_frames`` frames."""

    n_frames: int
    keyframes: np.ndarray
    centres: np.ndarray

    def windows(self, clip_len: int) -> list[np.ndarray]:
        """Frame indices of each key clip (:func:`~dance.motion.keyframes.clip_window`)."""
        return [clip_window(int(c), self.n_frames, clip_len) for c in self.centres]


def key_clips(signal: np.ndarray, settings: KeyclipSettings) -> KeyClips:
    """Keyframes (peaks of a per-frame signal, one value per frame) and at most ``n_clips`` clip centres."""
    keys = find_keyframes(signal, settings.threshold, settings.min_distance, settings.baseline_degree)
    return KeyClips(len(signal), keys, choose_centres(keys, len(signal), settings.n_clips))


@dataclass(frozen=True)
class KeyframeInput:
    """What a video's keyframes are found in: its ``frames`` at ``keyclips.size`` (grey ``(T, H, W)`` as
    :func:`keyframe_input` decodes them, or RGB ``(T, H, W, 3)``) or its ``poses``."""

    frames: np.ndarray | None = None
    poses: PoseSequence | None = None

    @property
    def signal(self) -> str:
        """``pixels`` or ``poses``."""
        return "pixels" if self.frames is not None else "poses"

    @property
    def n_frames(self) -> int:
        return len(self.frames) if self.frames is not None else len(self.poses.keypoints)  # type: ignore[union-attr]

    def reversed(self) -> KeyframeInput:
        """The same video played backwards."""
        if self.frames is not None:
            return KeyframeInput(frames=self.frames[::-1])
        return KeyframeInput(poses=reverse_sequence(self.poses))  # type: ignore[arg-type]

    def key_clips(self, settings: KeyclipSettings) -> KeyClips:
        if self.frames is not None:
            return key_clips(difference_signal(self.frames, settings.blur_sigma), settings)
        assert self.poses is not None
        return key_clips(pose_motion_signal(self.poses.keypoints, self.poses.scores), settings)


def keyframe_input(path: Path | str, settings: KeyclipSettings,
                   sequence: Callable[[], PoseSequence]) -> KeyframeInput:
    """The keyframe input of the video at ``path`` under ``keyclips.signal``: its frames decoded at
    ``keyclips.size`` in grey (the decoder scales them and outputs luma only), or its pose sequence
    (``sequence()``, called only then)."""
    if uses_pixels(settings.signal, path):
        return KeyframeInput(frames=read_video(path, size=settings.size, grey=True))
    return KeyframeInput(poses=sequence())


def reverse_sequence(seq: PoseSequence) -> PoseSequence:
    """A pose sequence played backwards."""
    return PoseSequence(np.ascontiguousarray(seq.keypoints[::-1]), np.ascontiguousarray(seq.scores[::-1]))


def frames_of(seq: PoseSequence, frames: np.ndarray) -> PoseSequence:
    """The poses of some frames of a sequence (e.g. a key clip's window)."""
    return PoseSequence(seq.keypoints[frames], seq.scores[frames])


def key_clip_poses(source: PoseSource, record: VideoRecord, windows: list[np.ndarray]) -> list[PoseSequence]:
    """The poses of each key clip (frame ``windows``) of one video, as the poses stage estimates them: a source
    that does all windows in one pass (MediaPipe: one decode, only the windows' frames converted, a fresh graph per
    clip) does; the others are asked window by window. A :class:`~dance.errors.DanceError` on any clip raises."""
    clip_poses = getattr(source, "clip_poses", None)
    return clip_poses(record, windows) if clip_poses is not None else [source.poses(record, w) for w in windows]


def filter_settings(motion: MotionSettings) -> FilterSettings:
    """The clip quality filters of the ``motion`` settings."""
    return FilterSettings(motion.min_frame_conf, motion.min_clip_conf, motion.min_adjacent_cosine)


def clip_status(keypoints: np.ndarray, scores: np.ndarray, filters: FilterSettings) -> np.ndarray:
    """Why each clip (N, L, J, 2) is rejected, or ``OK`` (:func:`~dance.motion.sequences.check_clip`), (N,)."""
    return np.array([check_clip(keypoints[c], scores[c], filters) for c in range(len(keypoints))], dtype=object)


def clip_vectors(keypoints: np.ndarray) -> np.ndarray:
    """The clips (N, L, J, 2) normalised (:func:`~dance.motion.sequences.normalise`) and flattened: (N, L*J*2),
    the vectors motion concepts are clustered and matched on."""
    norm = normalise(keypoints) if len(keypoints) else np.asarray(keypoints, np.float32)
    return norm.reshape(len(norm), int(np.prod(norm.shape[1:])))


def _stack(clips: Sequence[PoseSequence]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([c.keypoints for c in clips]), np.stack([c.scores for c in clips])


def label_clips(clips: Sequence[PoseSequence], filters: FilterSettings, centroids: np.ndarray) -> np.ndarray:
    """Each clip's motion concept: the nearest centroid (cosine) of its normalised poses, or -1 for a clip the
    quality filters reject. (N,) int64."""
    out = np.full(len(clips), -1, dtype=np.int64)
    if not clips:
        return out
    kp, sc = _stack(clips)
    ok = np.flatnonzero(clip_status(kp, sc, filters) == OK)
    out[ok] = nearest_centroid(clip_vectors(kp[ok]), centroids)
    return out


def video_concepts(clip_concepts: np.ndarray) -> set[int]:
    """A video's motion labels (paper Eq. 2): the concepts any of its key clips belongs to."""
    return {int(j) for j in np.asarray(clip_concepts) if j >= 0}
