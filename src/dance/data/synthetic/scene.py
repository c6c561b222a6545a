"""Procedural scenes (textured backgrounds with a horizon) and object sprites drawn with PIL."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import ImageDraw

__all__ = ["OBJECTS", "SCENES", "draw_object", "object_extent", "render_background"]

SCENES: tuple[str, ...] = ("court", "pool", "field", "snow", "street", "park")
OBJECTS: tuple[str, ...] = ("ball", "bench", "hoop", "kettlebell", "cone", "bottle", "bag")

Array = np.ndarray


def _grid(h: int, w: int) -> tuple[Array, Array]:
    """Normalised pixel-centre coordinates: v (row / h) and u (col / h), both float32."""
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    return (v + 0.5) / h, (u + 0.5) / h


def _fill(img: Array, mask: Array, color: tuple[float, float, float] | Array) -> None:
    img[mask] = np.asarray(color, dtype=np.float32)


def _depth(v: Array, horizon: float) -> Array:
    """0 at the horizon, 1 at the bottom edge (floor rows only are meaningful)."""
    return np.clip((v - horizon) / (1.0 - horizon), 1e-3, 1.0)


def _vgrad(v: Array, top: tuple, bottom: tuple, v0: float, v1: float) -> Array:
    t = np.clip((v - v0) / max(v1 - v0, 1e-6), 0, 1)[..., None]
    return np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t


def _court(v: Array, u: Array, hz: float, rng: np.random.Generator) -> Array:
    img = _vgrad(v, (40, 52, 98), (70, 86, 140), 0.0, hz)
    band = (v > hz - 0.10) & (v < hz - 0.04)
    _fill(img, band, (225, 225, 232))
    floor = v >= hz
    d = _depth(v, hz)
    xp = (u - u.mean()) / d  # perspective x on the floor
    plank = np.floor(xp * 7.0 + rng.uniform(0, 1)).astype(np.int64)
    shades = rng.uniform(0.85, 1.1, size=256).astype(np.float32)
    wood = np.array([205, 138, 72], np.float32) * shades[plank % 256][..., None]
    grain = 1.0 + 0.05 * np.sin(v * 140.0 + 3.0 * np.sin(xp * 9.0))
    img[floor] = (wood * grain[..., None])[floor]
    line_v = hz + rng.uniform(0.25, 0.35) * (1 - hz)
    _fill(img, floor & (np.abs(v - line_v) < 0.008 + 0.006 * d), (245, 245, 245))
    arc = np.abs(np.hypot((u - u.mean()) * 0.55, (v - line_v) * 1.6) - 0.16) < 0.01
    _fill(img, floor & arc & (v > line_v), (245, 245, 245))
    return img


def _pool(v: Array, u: Array, hz: float, rng: np.random.Generator) -> Array:
    img = np.empty(v.shape + (3,), np.float32)
    img[:] = (228, 238, 244)
    tile = 0.07
    o = rng.uniform(0, tile, size=2)
    grout = (np.mod(v + o[0], tile) < 0.008) | (np.mod(u + o[1], tile) < 0.008)
    _fill(img, grout & (v < hz), (150, 178, 195))
    _fill(img, (v > hz - 0.09) & (v < hz - 0.05), (20, 60, 150))
    water_end = hz + rng.uniform(0.45, 0.55) * (1 - hz)
    water = (v >= hz) & (v < water_end)
    ph = rng.uniform(0, 2 * np.pi, size=2)
    ripple = np.sin(u * 38.0 + 2.5 * np.sin(v * 55.0 + ph[0])) * np.sin(v * 70.0 + ph[1])
    wcol = np.array([25, 118, 210], np.float32) + (ripple > 0.55)[..., None] * np.float32(70)
    img[water] = wcol[water]
    lane_v = hz + 0.45 * (water_end - hz)
    rope = water & (np.abs(v - lane_v) < 0.012)
    red = np.mod(u * 18.0, 1.0) < 0.5
    _fill(img, rope & red, (220, 40, 40))
    _fill(img, rope & ~red, (250, 250, 250))
    deck = v >= water_end
    _fill(img, deck, (236, 226, 200))
    dgrout = deck & ((np.mod(v + o[0], 0.09) < 0.01) | (np.mod(u + o[1], 0.12) < 0.01))
    _fill(img, dgrout, (190, 180, 160))
    _fill(img, deck & (v < water_end + 0.015), (250, 250, 250))
    return img


def _sky(v: Array, u: Array, hz: float, rng: np.random.Generator, top: tuple, bottom: tuple) -> Array:
    img = _vgrad(v, top, bottom, 0.0, hz)
    for _ in range(3):
        cx, cy = rng.uniform(0.0, u.max()), rng.uniform(0.05, max(0.06, hz - 0.15))
        r = rng.uniform(0.06, 0.11)
        blob = np.exp(-(((u - cx) / (2.2 * r)) ** 2 + ((v - cy) / r) ** 2))
        img += (np.float32(250) - img) * (0.8 * blob)[..., None] * (v < hz)[..., None]
    return img


def _field(v: Array, u: Array, hz: float, rng: np.random.Generator) -> Array:
    img = _sky(v, u, hz, rng, (90, 155, 230), (180, 215, 245))
    floor = v >= hz
    d = _depth(v, hz)
    xp = (u - u.mean()) / d
    stripe = np.mod(np.floor(xp * 3.0 + rng.uniform(0, 1)), 2)
    grass = np.array([50, 150, 40], np.float32) * (0.85 + 0.25 * stripe)[..., None]
    img[floor] = grass[floor]
    line_v = hz + rng.uniform(0.2, 0.3) * (1 - hz)
    _fill(img, floor & (np.abs(v - line_v) < 0.006 + 0.006 * d), (245, 245, 245))
    _fill(img, floor & (np.abs(xp - 0.9) < 0.05), (245, 245, 245))
    return img


def _snow(v: Array, u: Array, hz: float, rng: np.random.Generator) -> Array:
    img = _vgrad(v, (170, 180, 200), (215, 222, 235), 0.0, hz)
    w = u.max()
    for _ in range(3):  # mountains
        cx, peak, half = rng.uniform(0, w), rng.uniform(0.12, 0.25), rng.uniform(0.25, 0.45)
        m = (v < hz) & (v > hz - peak * (1 - np.abs(u - cx) / half))
        _fill(img, m, (110, 122, 150))
        cap = m & (v < hz - peak * 0.65 * (1 - np.abs(u - cx) / half))
        _fill(img, cap, (245, 248, 252))
    for _ in range(7):  # pine trees
        cx, th = rng.uniform(0, w), rng.uniform(0.08, 0.14)
        tri = (v < hz) & (v > hz - th) & (np.abs(u - cx) < 0.35 * (v - (hz - th)))
        _fill(img, tri, (25, 70, 45))
    floor = v >= hz
    ph = rng.uniform(0, 2 * np.pi)
    shade = 1.0 - 0.05 * (0.5 + 0.5 * np.sin(u * 9.0 + v * 5.0 + ph))
    snow = np.array([242, 246, 252], np.float32) * shade[..., None]
    img[floor] = snow[floor]
    d = _depth(v, hz)
    xp = (u - u.mean()) / d
    _fill(img, floor & (np.abs(np.mod(xp + rng.uniform(0, 1), 0.8) - 0.4) < 0.012), (200, 212, 232))
    flakes = rng.random(v.shape) < 0.012
    _fill(img, flakes, (255, 255, 255))
    return img


def _street(v: Array, u: Array, hz: float, rng: np.random.Generator) -> Array:
    img = np.empty(v.shape + (3,), np.float32)
    bh = 0.045
    row = np.floor((v + rng.uniform(0, bh)) / bh)
    bw = 0.11
    brick_u = u + np.mod(row, 2) * bw / 2
    shades = rng.uniform(0.85, 1.1, size=64).astype(np.float32)
    idx = (row.astype(np.int64) * 7 + np.floor(brick_u / bw).astype(np.int64)) % 64
    img[:] = np.array([158, 66, 48], np.float32) * shades[idx][..., None]
    mortar = (np.mod(v + 0.0, bh) < 0.008) | (np.mod(brick_u, bw) < 0.008)
    _fill(img, mortar, (205, 195, 182))
    wx = rng.uniform(0, 0.3)
    win = (np.mod(u + wx, 0.42) < 0.17) & (v > 0.08) & (v < hz - 0.12)
    _fill(img, win, (45, 60, 80))
    _fill(img, win & (np.mod(u + wx, 0.42) < 0.02), (230, 230, 230))
    walk_end = hz + 0.18 * (1 - hz)
    walk = (v >= hz) & (v < walk_end)
    _fill(img, walk, (172, 172, 168))
    _fill(img, walk & (np.mod(u, 0.2) < 0.01), (130, 130, 128))
    _fill(img, (v >= walk_end) & (v < walk_end + 0.015), (215, 215, 210))
    road = v >= walk_end + 0.015
    grit = rng.normal(0, 6, size=v.shape).astype(np.float32)
    asphalt = (np.float32(72) + grit)[..., None] * np.ones(3, np.float32)
    img[road] = asphalt[road]
    lane_v = walk_end + 0.5 * (1 - walk_end)
    dash = road & (np.abs(v - lane_v) < 0.012) & (np.mod(u + rng.uniform(0, 0.3), 0.3) < 0.17)
    _fill(img, dash, (240, 200, 30))
    return img


def _park(v: Array, u: Array, hz: float, rng: np.random.Generator) -> Array:
    img = _sky(v, u, hz, rng, (120, 190, 240), (200, 230, 250))
    w = u.max()
    for _ in range(6):  # trees: trunk + round canopy
        cx, r = rng.uniform(0, w), rng.uniform(0.07, 0.11)
        trunk = (np.abs(u - cx) < 0.018) & (v < hz) & (v > hz - 0.12)
        _fill(img, trunk, (100, 65, 35))
        canopy = np.hypot(u - cx, v - (hz - 0.12 - r * 0.7)) < r
        _fill(img, canopy & (v < hz), (35 + rng.integers(0, 30), 115 + rng.integers(0, 30), 45))
    lawn_end = hz + 0.2 * (1 - hz)
    lawn = (v >= hz) & (v < lawn_end)
    _fill(img, lawn, (110, 175, 80))
    flowers = lawn & (rng.random(v.shape) < 0.06)
    _fill(img, flowers, (240, 220, 60))
    path = v >= lawn_end
    speck = rng.normal(0, 12, size=v.shape).astype(np.float32)[..., None]
    gravel = np.array([206, 184, 142], np.float32) + speck
    img[path] = gravel[path]
    _fill(img, path & (v < lawn_end + 0.012), (150, 130, 95))
    return img


_SCENE_FNS: dict[str, Callable[[Array, Array, float, np.random.Generator], Array]] = {
    "court": _court,
    "pool": _pool,
    "field": _field,
    "snow": _snow,
    "street": _street,
    "park": _park,
}


def render_background(scene: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size, 3) uint8 background for ``scene`` with random layout and colour jitter."""
    if scene not in _SCENE_FNS:
        raise KeyError(f"unknown scene {scene!r}; known: {', '.join(SCENES)}")
    v, u = _grid(size, size)
    horizon = float(rng.uniform(0.42, 0.52))
    img = _SCENE_FNS[scene](v, u, horizon, rng)
    jitter = rng.uniform(0.9, 1.1, size=3) * rng.uniform(0.92, 1.08)
    return np.clip(img * jitter.astype(np.float32), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Object sprites. Sizes are fractions of the frame height; (width, height).
_EXTENT: dict[str, tuple[float, float]] = {
    "ball": (0.23, 0.23),
    "bench": (0.42, 0.30),
    "hoop": (0.34, 0.34),
    "kettlebell": (0.22, 0.27),
    "cone": (0.19, 0.28),
    "bottle": (0.10, 0.28),
    "bag": (0.32, 0.22),
}
_OUTLINE = (25, 25, 25)
_WHITE = (250, 250, 250)


def object_extent(name: str, frame_height: int) -> tuple[float, float]:
    """Sprite (width, height) in pixels for a frame of height ``frame_height``."""
    w, h = _EXTENT[name]
    return w * frame_height, h * frame_height


def draw_object(draw: ImageDraw.ImageDraw, name: str, cx: float, base: float, frame_height: int) -> None:
    """Draw sprite ``name`` standing on the floor at (cx, base) (bottom-centre), opaque."""
    if name not in _EXTENT:
        raise KeyError(f"unknown object {name!r}; known: {', '.join(OBJECTS)}")
    w, h = object_extent(name, frame_height)
    lw = max(1, round(frame_height / 70))
    left, top, right = cx - w / 2, base - h, cx + w / 2
    if name == "ball":
        draw.ellipse((left, top, right, base), fill=(240, 118, 20), outline=_OUTLINE, width=lw)
        draw.line((cx, top, cx, base), fill=_OUTLINE, width=lw)
        draw.line((left, base - h / 2, right, base - h / 2), fill=_OUTLINE, width=lw)
        draw.arc((left - w * 0.45, top, cx - w * 0.12, base), -60, 60, fill=_OUTLINE, width=lw)
        draw.arc((cx + w * 0.12, top, right + w * 0.45, base), 120, 240, fill=_OUTLINE, width=lw)
    elif name == "bench":
        metal = (165, 165, 175)
        wood = (160, 95, 40)
        seat_top = base - 0.5 * h
        leg_w = max(2.0, w * 0.06)
        for x in (left + w * 0.12, right - w * 0.12):
            leg = (x - leg_w / 2, top + 0.05 * h, x + leg_w / 2, base)
            draw.rectangle(leg, fill=metal, outline=_OUTLINE)
        draw.rectangle((left, seat_top, right, seat_top + 0.14 * h), fill=wood, outline=_OUTLINE, width=lw)
        for k in range(2):
            y0 = top + k * 0.2 * h
            slat = (left + 0.04 * w, y0, right - 0.04 * w, y0 + 0.12 * h)
            draw.rectangle(slat, fill=wood, outline=_OUTLINE)
    elif name == "hoop":
        ring = max(2, round(frame_height * 0.04))
        box = (left, top, right, base)
        draw.ellipse(box, outline=_OUTLINE, width=ring + 2)
        for k in range(12):
            color = (230, 35, 200) if k % 2 == 0 else (255, 225, 40)
            draw.arc((left + 1, top + 1, right - 1, base - 1), k * 30, (k + 1) * 30, fill=color, width=ring)
    elif name == "kettlebell":
        iron, light = (40, 40, 45), (225, 225, 225)
        body_d = 0.7 * h
        bt = base - body_d
        grip = max(2, round(0.08 * h))
        handle = (cx - 0.3 * w, top, cx + 0.3 * w, bt + 0.6 * body_d)
        draw.ellipse(handle, outline=light, width=grip + 2)
        draw.ellipse((handle[0] + 1, top + 1, handle[2] - 1, handle[3] - 1), outline=iron, width=grip)
        draw.ellipse((left, bt, right, base), fill=iron, outline=light, width=lw)
        label = (cx - 0.22 * w, bt + 0.4 * body_d, cx + 0.22 * w, bt + 0.62 * body_d)
        draw.rectangle(label, fill=(210, 30, 30))
    elif name == "cone":
        plate = 0.08 * h
        draw.rectangle((left, base - plate, right, base), fill=(30, 30, 30))
        pts = [(cx - 0.4 * w, base - plate), (cx + 0.4 * w, base - plate), (cx, top)]
        draw.polygon(pts, fill=(232, 38, 28), outline=_OUTLINE)
        for f0, f1 in ((0.35, 0.48), (0.62, 0.72)):
            y0, y1 = base - plate - f1 * (h - plate), base - plate - f0 * (h - plate)
            hw0, hw1 = 0.4 * w * (1 - f1), 0.4 * w * (1 - f0)
            draw.polygon([(cx - hw1, y1), (cx + hw1, y1), (cx + hw0, y0), (cx - hw0, y0)], fill=_WHITE)
    elif name == "bottle":
        neck_h = 0.22 * h
        draw.rounded_rectangle(
            (left, top + neck_h, right, base), radius=w * 0.3, fill=(40, 110, 235), outline=_OUTLINE, width=lw
        )
        draw.rectangle((cx - 0.28 * w, top + 0.06 * h, cx + 0.28 * w, top + neck_h + 1), fill=(40, 110, 235))
        draw.rectangle((cx - 0.3 * w, top, cx + 0.3 * w, top + 0.08 * h), fill=_WHITE, outline=_OUTLINE)
        draw.rectangle((left + lw, base - 0.55 * h, right - lw, base - 0.38 * h), fill=_WHITE)
    elif name == "bag":
        body_top = top + 0.35 * h
        strap = (cx - 0.3 * w, top, cx + 0.3 * w, body_top + 0.35 * h)
        draw.arc(strap, 180, 360, fill=_OUTLINE, width=lw * 2)
        draw.rounded_rectangle(
            (left, body_top, right, base), radius=0.25 * h, fill=(30, 145, 80), outline=_OUTLINE, width=lw
        )
        draw.line((left + 0.15 * w, body_top + 0.2 * h, right - 0.15 * w, body_top + 0.2 * h), fill=_OUTLINE)
        draw.rectangle((cx - 0.1 * w, body_top + 0.3 * h, cx + 0.1 * w, base - 0.1 * h), fill=(240, 200, 40))
