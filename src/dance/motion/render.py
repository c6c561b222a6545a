"""Pose-sequence renderings: stick figures as PNG strips and animated GIFs (PIL only, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from dance.motion.poses import Skeleton

BG = (250, 250, 247)
INK = (40, 60, 120)
JOINT = (200, 70, 50)


def tidy(kp: np.ndarray, scores: np.ndarray | None) -> np.ndarray:
    """A copy of a sequence (L, J, 2) with every score-0 joint moved to the mean of its frame's visible joints.

    Datasets mark joints they cannot see with score 0 and often store them at a meaningless place (Penn Action:
    near (0, 0)); they are not drawn, and moved so they do not stretch the canvas fit.
    """
    kp = np.array(kp, dtype=np.float32, copy=True)
    if scores is None:
        return kp
    seen = np.asarray(scores) > 0
    for t in range(len(kp)):
        if seen[t].any() and not seen[t].all():
            kp[t, ~seen[t]] = kp[t, seen[t]].mean(axis=0)
    return kp


def _fit(frames: np.ndarray, size: int, margin: float = 0.1) -> np.ndarray:
    """Scale a sequence (L, J, 2) uniformly into a size×size canvas, keeping its aspect ratio and motion."""
    pts = frames.reshape(-1, 2)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = max(float((hi - lo).max()), 1e-6)
    scale = size * (1 - 2 * margin) / span
    offset = (size - (hi - lo) * scale) / 2
    return (frames - lo) * scale + offset


def draw_pose(draw: ImageDraw.ImageDraw, kp: np.ndarray, skeleton: Skeleton, scores: np.ndarray | None = None,
              offset: tuple[int, int] = (0, 0), width: int = 3) -> None:
    """Draw one pose (J, 2) in canvas pixels; joints with score 0 (and their edges) are left out."""
    seen = np.ones(len(kp), bool) if scores is None else np.asarray(scores) > 0
    ox, oy = offset
    for a, b in skeleton.edges:
        if seen[a] and seen[b]:
            draw.line([(kp[a, 0] + ox, kp[a, 1] + oy), (kp[b, 0] + ox, kp[b, 1] + oy)], fill=INK, width=width)
    r = max(2, width - 1)
    for j in np.flatnonzero(seen):
        x, y = kp[j, 0] + ox, kp[j, 1] + oy
        draw.ellipse([x - r, y - r, x + r, y + r], fill=JOINT)


def _panels(seqs: Sequence[np.ndarray], skeleton: Skeleton, titles: Sequence[str], size: int,
            scores: Sequence[np.ndarray | None] | None) -> list[Image.Image]:
    """One image per frame with the sequences side by side (all resampled to the longest length)."""
    length = max(len(s) for s in seqs)
    fitted = [_fit(tidy(s, None if scores is None else scores[i]), size) for i, s in enumerate(seqs)]
    frames = []
    for t in range(length):
        img = Image.new("RGB", (size * len(seqs), size + 16), BG)
        d = ImageDraw.Draw(img)
        for i, seq in enumerate(fitted):
            k = min(len(seq) - 1, t * len(seq) // length)
            sc = None if scores is None or scores[i] is None else scores[i][k]
            draw_pose(d, seq[k], skeleton, sc, offset=(i * size, 16))
            d.text((i * size + 4, 2), titles[i][: size // 6], fill=(20, 20, 20))
        frames.append(img)
    return frames


def save_animation(path: Path, seqs: Sequence[np.ndarray], skeleton: Skeleton, titles: Sequence[str],
                   size: int = 160, fps: int = 8, scores: Sequence[np.ndarray | None] | None = None) -> Path:
    """An animated GIF of one or more pose sequences side by side."""
    frames = _panels(seqs, skeleton, titles, size, scores)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=int(1000 / fps), loop=0)
    return path


def save_strip(path: Path, seq: np.ndarray, skeleton: Skeleton, n: int = 8, size: int = 96,
               scores: np.ndarray | None = None) -> Path:
    """A PNG strip of ``n`` evenly spaced frames of one pose sequence (score-0 joints left out)."""
    seq = _fit(tidy(seq, scores), size)
    idx = np.round(np.linspace(0, len(seq) - 1, min(n, len(seq)))).astype(int)
    img = Image.new("RGB", (size * len(idx), size), BG)
    d = ImageDraw.Draw(img)
    for i, k in enumerate(idx):
        draw_pose(d, seq[k], skeleton, None if scores is None else scores[k], offset=(i * size, 0), width=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)
    return path
