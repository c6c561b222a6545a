"""Quality filters and normalisation of key-clip pose sequences (paper §3.2.1, "Pose sequence extraction").

Reference values (DESIGN.md, from the authors' public predecessor code): a frame whose mean joint confidence is
below 0.1 counts as "no person"; a clip is rejected when its mean confidence is below 0.5 or when any two
adjacent frames have a cosine similarity below 0.92. Here a clip with any "no person" frame is rejected too, so
that no clip is clustered with made-up joints. The cosine is taken on centred poses (mean joint subtracted,
divided by the body's extent), since raw pixel coordinates are all positive and almost always similar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

OK = "ok"
NO_PERSON = "no_person"
LOW_CONFIDENCE = "low_confidence"
DISCONTINUITY = "discontinuity"


@dataclass(frozen=True)
class FilterSettings:
    min_frame_conf: float = 0.1
    min_clip_conf: float = 0.5
    min_adjacent_cosine: float = 0.92


def centred(keypoints: np.ndarray) -> np.ndarray:
    """Subtract the per-frame mean joint and divide by the per-frame extent (max of x and y ranges)."""
    kp = keypoints - keypoints.mean(axis=-2, keepdims=True)
    extent = np.ptp(kp, axis=-2).max(axis=-1, keepdims=True)[..., None]
    return kp / np.maximum(extent, 1e-6)


def adjacent_cosine(keypoints: np.ndarray) -> np.ndarray:
    """Cosine similarity of consecutive frames' flattened centred poses, shape (T-1,)."""
    flat = centred(keypoints).reshape(len(keypoints), -1)
    a, b = flat[:-1], flat[1:]
    num = (a * b).sum(axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)


def check_clip(keypoints: np.ndarray, scores: np.ndarray, settings: FilterSettings) -> str:
    """Why a clip is rejected (one of the reason constants), or ``OK``."""
    frame_conf = scores.mean(axis=1)
    if (frame_conf < settings.min_frame_conf).any():
        return NO_PERSON
    if float(frame_conf.mean()) < settings.min_clip_conf:
        return LOW_CONFIDENCE
    if len(keypoints) > 1 and float(adjacent_cosine(keypoints).min()) < settings.min_adjacent_cosine:
        return DISCONTINUITY
    return OK


def normalise(keypoints: np.ndarray) -> np.ndarray:
    """Per frame: subtract the mean joint, then min-max x and y separately to [0, 1]. Same shape."""
    kp = keypoints - keypoints.mean(axis=-2, keepdims=True)
    lo = kp.min(axis=-2, keepdims=True)
    rng = np.maximum(kp.max(axis=-2, keepdims=True) - lo, 1e-6)
    return ((kp - lo) / rng).astype(np.float32)
