"""The built-in pose sources with modules of their own: ``penn-action`` and ``mediapipe``, in that order.

:data:`dance.motion.poses.POSE_SOURCES` imports this module on its first look-up (its ``builtins``); this module
imports the sources' modules, which import :mod:`dance.motion.poses` for the pose types, so registering them
here, not in ``poses``, keeps the imports one-way. ``annotations`` is registered in :mod:`dance.motion.poses`,
beside its class. Building a source still imports nothing heavy: ``mediapipe`` itself is imported when a
:class:`~dance.motion.mediapipe_source.MediaPipePoseSource` is made.
"""

from __future__ import annotations

from pathlib import Path

from dance.motion.mediapipe_source import MediaPipePoseSource
from dance.motion.penn_action import PennPoseSource
from dance.motion.poses import PoseSource, register_pose_source


@register_pose_source("penn-action", "Penn Action labels/*.mat read directly (poses.path: the dataset folder)",
                      reads="the Penn Action folder (with labels/)")
def _penn_action(folder: Path) -> PoseSource:
    return PennPoseSource(root=folder)


@register_pose_source("mediapipe", "MediaPipe Pose on the video frames (optional extra dance-xai[pose])")
def _mediapipe() -> PoseSource:
    return MediaPipePoseSource()
