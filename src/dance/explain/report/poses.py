"""Pose images for the report, built on :mod:`dance.explain.render`, that respect joint scores.

Datasets mark joints they cannot see with score 0 and often put them at a meaningless place (Penn Action: near
(0, 0)). Such joints are not drawn, and before fitting a sequence into the canvas they are moved to the mean of the
frame's visible joints so they do not shrink the figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dance.explain.render import BG, draw_pose, save_animation
from dance.motion.poses import Skeleton


def tidy(kp: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
    """A copy of a sequence (L, J, 2) with every score-0 joint moved to its frame's visible mean."""
    kp = np.array(kp, dtype=np.float32, copy=True)
    if scores is None:
        return kp
    seen = np.asarray(scores) > 0
    for t in range(len(kp)):
        if seen[t].any() and not seen[t].all():
            kp[t, ~seen[t]] = kp[t, seen[t]].mean(axis=0)
    return kp


def _fit(frames: np.ndarray, size: int, margin: float = 0.1) -> np.ndarray:
    pts = frames.reshape(-1, 2)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = max(float((hi - lo).max()), 1e-6)
    scale = size * (1 - 2 * margin) / span
    return (frames - lo) * scale + (size - (hi - lo) * scale) / 2


def save_pose_strip(path: Path, seq: np.ndarray, skeleton: Skeleton, scores: np.ndarray | None = None,
                    n: int = 6, size: int = 40) -> Path:
    """A PNG strip of ``n`` evenly spaced frames of a pose sequence; score-0 joints are left out."""
    seq = _fit(tidy(seq, scores), size)
    idx = np.round(np.linspace(0, len(seq) - 1, min(n, len(seq)))).astype(int)
    im = Image.new("RGB", (size * len(idx), size), BG)
    d = ImageDraw.Draw(im)
    for i, k in enumerate(idx):
        draw_pose(d, seq[k], skeleton, None if scores is None else scores[k], offset=(i * size, 0), width=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, optimize=True)
    return path


def save_pose_animation(path: Path, seqs: Sequence[np.ndarray], scores: Sequence[np.ndarray | None],
                        skeleton: Skeleton, titles: Sequence[str], size: int = 112) -> Path:
    """An animated GIF of pose sequences side by side (:func:`dance.explain.render.save_animation`)."""
    return save_animation(path, [tidy(s, c) for s, c in zip(seqs, scores)], skeleton, titles, size=size,
                          scores=list(scores))
