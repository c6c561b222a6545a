"""Draw one frame: pre-rendered background + capsule figure + object overlay + pixel noise."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from dance.data.synthetic.body import HEAD_RADIUS, LIMB_WIDTH, J

__all__ = ["PersonStyle", "draw_person", "render_frame"]

Color = tuple[int, int, int]


@dataclass(frozen=True)
class PersonStyle:
    """Clothing and skin colours of one figure."""

    shirt: Color
    pants: Color
    skin: Color
    outline: Color = (20, 20, 20)


def _capsule(draw: ImageDraw.ImageDraw, a: np.ndarray, b: np.ndarray, width: float, color: Color) -> None:
    """Thick segment with round caps."""
    w = max(1, int(round(width)))
    r = width / 2.0
    draw.line((float(a[0]), float(a[1]), float(b[0]), float(b[1])), fill=color, width=w)
    for p in (a, b):
        draw.ellipse((p[0] - r, p[1] - r, p[0] + r, p[1] + r), fill=color)


_LEGS = (("r_hip", "r_knee"), ("r_knee", "r_ankle"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"))
_ARMS = (("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"), ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"))


def draw_person(img: Image.Image, joints: np.ndarray, style: PersonStyle, height_px: float) -> None:
    """Draw the figure (joints: (15, 2) pixel x, y) on ``img`` in place.

    Order: legs, torso, arms, head; each group gets a dark outline first so the figure stays
    visible on any background.
    """
    draw = ImageDraw.Draw(img)
    lw = max(2.0, LIMB_WIDTH * height_px)
    p = {name: joints[i] for name, i in J.items()}

    def group(segments: tuple[tuple[str, str], ...], color: Color, width: float) -> None:
        for a, b in segments:
            _capsule(draw, p[a], p[b], width + 2.0, style.outline)
        for a, b in segments:
            _capsule(draw, p[a], p[b], width, color)

    group(_LEGS + (("r_hip", "l_hip"),), style.pants, lw)
    # torso: outlined quad between shoulders and hips, rounded off by a thick spine and shoulder bar
    quad = [tuple(map(float, p[k])) for k in ("r_shoulder", "l_shoulder", "l_hip", "r_hip")]
    draw.polygon(quad, fill=style.shirt, outline=style.outline, width=1)
    _capsule(draw, p["neck"], p["pelvis"], lw * 1.5, style.shirt)
    _capsule(draw, p["r_shoulder"], p["l_shoulder"], lw, style.shirt)
    _capsule(draw, p["r_hip"], p["l_hip"], lw, style.pants)
    group(_ARMS[:1] + _ARMS[2:3], style.shirt, lw)
    group(_ARMS[1:2] + _ARMS[3:], style.skin, lw * 0.9)
    # head
    hr = HEAD_RADIUS * height_px
    hx, hy = float(p["head"][0]), float(p["head"][1])
    _capsule(draw, p["neck"], p["head"], lw, style.skin)
    draw.ellipse((hx - hr - 1, hy - hr - 1, hx + hr + 1, hy + hr + 1), fill=style.outline)
    draw.ellipse((hx - hr, hy - hr, hx + hr, hy + hr), fill=style.skin)


def render_frame(
    background: Image.Image,
    joints: np.ndarray | None,
    style: PersonStyle,
    height_px: float,
    overlay: Image.Image | None = None,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    """Compose one RGB uint8 frame.

    ``background`` is copied, the figure drawn (skipped when ``joints`` is None), the RGBA
    ``overlay`` (objects standing in front of the person) pasted, and ``noise`` (int16, HxWx3)
    added.
    """
    img = background.copy()
    if joints is not None:
        draw_person(img, joints, style, height_px)
    if overlay is not None:
        img.paste(overlay, (0, 0), overlay)
    arr = np.asarray(img, dtype=np.uint8)
    if noise is not None:
        arr = np.clip(arr.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return arr
